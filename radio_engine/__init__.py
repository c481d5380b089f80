"""radio-engine: a streaming personalized-radio engine on Kafka, Faust and onnxruntime."""

__version__ = "0.1.0"
