"""Wire formats of the inference protocols (KServe v2 REST and gRPC, TF-Serving v1): no model logic."""
