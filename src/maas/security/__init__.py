"""Security core: key providers and the envelope cipher (and, beside them, keys and scopes); no transport."""
