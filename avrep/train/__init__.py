"""Training (the top of the library stack; nothing below imports it): DAVS (loop, losses) and the
talking-face generator (gen_data, gen_losses, gen_loop), sharing run start, schedule and epoch commit
(epochs), checkpoints (safetensors + JSON) and torchrun DDP."""
