"""train stage of portrait-dpo."""
