"""Models the project trains itself (the demo denoiser, fine-tuning scripts)."""
