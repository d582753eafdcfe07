"""The embedded world: procedural talking portraits made on the spot, no model hub needed."""
