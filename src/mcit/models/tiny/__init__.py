"""The tiny built-in models: LLaVA architecture at laptop-CPU scale, shipped as safetensors."""
