"""facerec training: MagFace (and ArcFace) training, ONNX export, MagFace checkpoint import.

Runs on Debian's python3-torch 1.13 and python3-onnx under /usr/bin/python3.
Inference never runs here: exported models are run by the C++ engine.
"""
