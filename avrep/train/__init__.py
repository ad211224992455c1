"""DAVS training: losses, loop, checkpoints (safetensors + JSON), torchrun DDP."""
