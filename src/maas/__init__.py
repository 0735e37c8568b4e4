"""maas: self-hosted Model-as-a-Service."""
