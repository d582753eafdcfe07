"""eval stage of portrait-dpo."""
