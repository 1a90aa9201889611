"""Third-party code kept verbatim: the Chakra execution-trace schema.

``et_def_pb2.py`` is the Python module that protoc 6.31.1 generated from
``et_def.proto`` (MLCommons Chakra, package ``ChakraProtoMsg``), copied unmodified from
the ``mlc-chakra`` 1.0.0 wheel (``chakra/schema/protobuf/``). Both files are under the
Apache License 2.0 (``LICENSE`` beside them, © MLCommons). It is vendored instead of
depending on ``mlc-chakra`` because that package declares HolisticTraceAnalysis, which
pulls in JupyterLab, Plotly and pytest at run time, while reading a trace needs only
``protobuf`` (>= 6.31.1: the generated module checks the runtime version on import).
Regenerate with ``protoc --python_out=. et_def.proto`` when the schema changes.
"""
