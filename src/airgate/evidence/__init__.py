"""Stage 2, evidence: what security tools found, read into ``airgate.model.Evidence`` items.

- ``reader.py``: sources (files, ``-`` for stdin, NDJSON streams), size limits,
  ``load_evidence`` / ``iter_evidence`` / ``iter_units``;
- ``documents.py``: what kind a parsed document is and how it becomes items;
- ``strings.py``: NUL and lone surrogates in parsed strings, kept as escapes;
- ``native.py``: airgate's own ``kind: Investigation`` documents;
- ``alerts.py``: Microsoft Graph alerts (v2) and incidents, Defender XDR API
  incidents and alerts, read into records (``where.py`` locates their errors);
- ``m365.py``: Defender XDR entities translated into Graph's field names;
- ``graph.py``: Graph subtypes and every entity type's identity key (what the
  queue deduplicates on);
- ``context.py``: the fields an item learns from its alert or investigation
  (where a URL came from, the device of a local account).

A new evidence format is a module here that turns a parsed document into
``Evidence`` items, plus its case in ``documents.py`` (what a document is, and
its reader in ``_READERS``).

May use: the policy stage's strict YAML/JSON sources and the shared leaves.
Never the engine, the runtime or click.

``from airgate.evidence import load_evidence`` (and the reader's other names)
keeps working: they are looked up in ``reader.py`` on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airgate.compat import lazy_names

if TYPE_CHECKING:
    from airgate.evidence.reader import (
        MAX_DOCUMENT_BYTES,
        MAX_LINE_BYTES,
        MAX_YAML_BYTES,
        MAX_YAML_VALUES,
        NDJSON_SUFFIXES,
        YAML_SUFFIXES,
        Line,
        Parsed,
        Source,
        Unit,
        Warn,
        iter_evidence,
        iter_units,
        load_evidence,
        parse_line,
    )

__all__ = ["MAX_DOCUMENT_BYTES", "MAX_LINE_BYTES", "MAX_YAML_BYTES", "MAX_YAML_VALUES",
           "NDJSON_SUFFIXES", "YAML_SUFFIXES", "Line", "Parsed", "Source", "Unit", "Warn",
           "iter_evidence", "iter_units", "load_evidence", "parse_line"]
__getattr__ = lazy_names(__name__, dict.fromkeys(__all__, "airgate.evidence.reader"))
