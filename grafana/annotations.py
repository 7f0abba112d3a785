"""Dashboard annotations from InfluxQL (the SDK's annotation target only fits Grafana's own source)."""

from __future__ import annotations

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models.dashboard import AnnotationQuery

from grafana.influxql import DATASOURCE, InfluxQuery


class InfluxAnnotation(AnnotationQuery):
    """An annotation whose events are the rows of an InfluxQL query."""

    def __init__(self, name: str, query: str, text_column: str, tags_column: str, color: str) -> None:
        super().__init__(name=name, datasource=DATASOURCE, enable=True, icon_color=color)
        self.query = InfluxQuery("Anno", query, "table")
        self.text_column, self.tags_column = text_column, tags_column

    def to_json(self) -> dict[str, object]:
        columns = {"tagsColumn": self.tags_column, "textColumn": self.text_column}
        target = {**self.query.to_json(), **columns, "fromAnnotations": True}
        return {**super().to_json(), **columns, "query": self.query.query, "target": target}


class Annotation(cogbuilder.Builder[AnnotationQuery]):
    """Builder of an :class:`InfluxAnnotation`, for ``dashboard.annotation``."""

    def __init__(self, name: str, query: str, *, text: str, tags: str, color: str = "red") -> None:
        self._annotation = InfluxAnnotation(name, query, text, tags, color)

    def build(self) -> AnnotationQuery:
        return self._annotation

    @property
    def query(self) -> str:
        """The InfluxQL of the annotation."""
        return self._annotation.query.query
