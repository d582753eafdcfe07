"""SyncNet: its networks (embedded and syncnet_python's), its window maths and LSE-C/LSE-D."""
