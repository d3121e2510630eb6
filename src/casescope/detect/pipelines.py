"""pySigma processing pipelines: where log sources become Channel/EventID conditions.

Each Windows rule is processed under two pipeline *variants*:

* `sysmon`: `sysmon_pipeline` (generic category → Sysmon EventID, service `sysmon`), then
  `windows_logsource_pipeline` (service → `Channel`, PowerShell categories → EventID);
* `security`: `windows_audit_pipeline` (process_creation → 4688, registry → 4657, with
  `Image`→`NewProcessName`, `ParentImage`→`ParentProcessName`… for service `security`),
  then `windows_logsource_pipeline`.

The order matters: the logsource pipeline adds the `Channel` condition for the *service*
the first pipeline set. A variant counts only when its pipeline gave the rule a service
(i.e. mapped its log source); a rule neither variant maps (e.g. `category: antivirus`)
keeps its unmapped condition and runs on every event.
"""

from __future__ import annotations

import pickle
from importlib.metadata import PackageNotFoundError, version

from sigma.pipelines.sysmon import sysmon_pipeline
from sigma.pipelines.windows import windows_audit_pipeline, windows_logsource_pipeline
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldMappingTransformation
from sigma.rule import SigmaRule

from casescope.detect.placeholders import Placeholders, placeholder_pipeline

PACKAGES = ("pySigma", "pysigma-pipeline-windows", "pysigma-pipeline-sysmon")


def variant_pipelines(placeholders: Placeholders | None = None) -> dict[str, ProcessingPipeline]:
    """The pipeline of every variant, by name; `placeholders` (name -> values) replace the
    `|expand` placeholders they name first (`placeholders.py`)."""
    return {
        "sysmon": placeholder_pipeline(placeholders or {})
        + sysmon_pipeline()
        + windows_logsource_pipeline(),
        "security": placeholder_pipeline(placeholders or {})
        + windows_audit_pipeline()
        + windows_logsource_pipeline(),
    }


def alias_pipeline(aliases: dict[str, str]) -> ProcessingPipeline:
    """Field names a rule set defines for its rules (Hayabusa's `eventkey_alias.txt`:
    `ComputerName` -> `Event.System.Computer`), applied before the log-source pipelines."""
    transformation = FieldMappingTransformation(dict(aliases))
    return ProcessingPipeline(
        items=[ProcessingItem(transformation, identifier="casescope_field_aliases")]
    )


def pipeline_versions() -> dict[str, str]:
    """Versions of pySigma and the pipeline packages (part of every cache key)."""
    found = {}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:  # pragma: no cover - they are dependencies
            found[package] = "missing"
    return found


def process(rule: SigmaRule, pipeline: ProcessingPipeline) -> tuple[SigmaRule, bool]:
    """A processed copy of `rule`, and whether the pipeline mapped its log source.

    The copy is made with pickle, several times faster than `copy.deepcopy` on pySigma rules,
    and paid per rule and pipeline at every compile (`bench/sigma.py`, cold load).
    """
    processed: SigmaRule = pickle.loads(pickle.dumps(rule, protocol=pickle.HIGHEST_PROTOCOL))
    pipeline.apply(processed)
    return processed, processed.logsource.service is not None
