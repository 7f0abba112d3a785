"""InfluxQL targets for Grafana's InfluxDB datasource (the SDK has no InfluxDB query builder)."""

from __future__ import annotations

from typing import Literal

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

#: The uid and type of the datasource every panel and variable uses (provisioned and pushed alike).
DATASOURCE = DataSourceRef(type_val="influxdb", uid="energymon-influxdb")

ResultFormat = Literal["time_series", "table"]


class InfluxQuery(cogvariants.Dataquery):
    """One raw InfluxQL target."""

    def __init__(self, ref_id: str, query: str, result_format: ResultFormat = "time_series") -> None:
        self.ref_id, self.query, self.result_format = ref_id, query, result_format

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": DATASOURCE.to_json(),
            "query": self.query,
            "rawQuery": True,
            "refId": self.ref_id,
            "resultFormat": self.result_format,
        }


class Influx(cogbuilder.Builder[InfluxQuery]):
    """Builder of an :class:`InfluxQuery`, for ``panel.with_target``."""

    def __init__(self, query: str, ref_id: str = "A", result_format: ResultFormat = "time_series") -> None:
        self._query = InfluxQuery(ref_id, query, result_format)

    def build(self) -> InfluxQuery:
        return self._query
