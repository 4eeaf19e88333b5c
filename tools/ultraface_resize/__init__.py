"""Runs an UltraFace (Ultra-Light-Fast-Generic-Face-Detector) ONNX graph at
another input size by regenerating its prior boxes (see convert.py)."""
