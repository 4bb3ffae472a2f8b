"""Pipelines: strategies composed in one explicit order, outermost first.

``pipeline`` holds ``Pipeline`` (composition, order checks through the strategies' hooks,
``describe``, config); ``standard`` the recommended stack for remote calls.
"""

from stoic._pipeline.pipeline import Pipeline, PipelineCompleted
from stoic._pipeline.standard import standard_pipeline

__all__ = ["Pipeline", "PipelineCompleted", "standard_pipeline"]
