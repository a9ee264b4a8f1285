"""Small shared utilities: seeding, W&B hermeticity, config helpers."""
