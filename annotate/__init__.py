"""annotate stage of portrait-dpo."""
