"""Designs that travel: links, design files, and standalone PyTorch code."""
