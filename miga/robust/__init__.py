"""Defenses that learn: adversarial fine-tuning of any denoiser (`python -m miga.robust`).

`data` (training photos disjoint from the evaluation photos, resumable step batches),
`objectives` (HAT, semantic consistency), `module` (the Lightning training step with the
configured attack as its inner maximisation), `__main__` (the Hydra app).
"""
