"""Titan Image Gateway: a gRPC streaming gateway in front of Amazon Titan Image
Generator and Nova Canvas on Amazon Bedrock."""
