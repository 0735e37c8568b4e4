"""Monitoring core: Triton-style statistics, sampled prediction logs, reference statistics, drift, outliers."""
