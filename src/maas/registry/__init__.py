"""The model registry: numbered immutable versions, aliases, lineage, and a content-addressed blob store."""

from maas.registry.entities import Artifact, GcReport, Lineage, Model, ModelVersion, State
from maas.registry.service import MODEL_ROLE, Registry

__all__ = ["MODEL_ROLE", "Artifact", "GcReport", "Lineage", "Model", "ModelVersion", "Registry", "State"]
