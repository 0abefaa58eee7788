"""diffrend: a differentiable renderer for PyTorch."""
