"""pairs stage of portrait-dpo."""
