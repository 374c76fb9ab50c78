"""The model zoo: DeepRecSys models (``models/*.yaml``) as TorchRec modules, built and memory-mapped.

- :mod:`hera.zoo.spec`: ``list_models()``, ``load_spec(model_id, scale) -> ModelSpec`` (validated, scaled);
- :mod:`hera.zoo.modules` / :mod:`hera.zoo.models`: MLP, attention, GRU/AUGRU; one module per kind
  (DLRM, NCF, WnD, MT-WnD, DIN, DIEN), ``forward(dense, kjt) -> scores [n, n_outputs]``;
- :mod:`hera.zoo.inputs`: ``make_inputs(spec, dense, ids) -> (Tensor, KeyedJaggedTensor)``;
- :mod:`hera.zoo.build`: ``build_model_files(model_id, scale, quantized, seed) -> meta.json path``;
- :mod:`hera.zoo.load`: ``load_model(model_id, scale, quantized) -> nn.Module`` (tables memory-mapped);
- :mod:`hera.zoo.cli`: ``hera models list|build``.

Importing this package does not import torch; the submodules that need it import it themselves.
"""
