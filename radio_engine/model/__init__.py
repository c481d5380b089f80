"""The model directory: its format (manifest), the shared input features, and ONNX serving."""
