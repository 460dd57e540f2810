"""One table between a Model Garden BERT pretrainer and transformers' BERT.

Both directions (`export_hf`, `import_hf`) walk the same list of
`WeightPair`s, so a weight that one side maps the other maps the same way.
Layouts:
  * Model Garden kernels put the input axes first: `[hidden, heads,
    head_size]` for query/key/value, `[heads, head_size, hidden]` for the
    attention output, `[in, out]` for dense layers. transformers' `Linear`
    weights are `[out, in]`. `input_axes` says how many leading axes are
    inputs.
  * Embedding tables are `[ids, width]` on both sides.
  * The word embeddings are tied to the MLM output layer on both sides
    (transformers' `cls.predictions.decoder.weight`, which it does not
    store); the MLM output bias is `masked_lm` `bias` here and
    `cls.predictions.bias` there (SPEC section 4).
Configs: `hf_config` and `bert_config` map the encoder settings, including
the activation: the Model Garden's `'gelu'` is the tanh approximation,
transformers' `'gelu_new'`; transformers' `'gelu'` is the exact form,
`activations.GELU_EXACT` here.
"""

import dataclasses
from typing import Any, Dict, List, Optional

import numpy as np
import tensorflow as tf
import tf_keras

from official.nlp.configs import bert as bert_configs
from official.nlp.configs import encoders
from official.nlp.modeling import models
from official.nlp.modeling import networks
from official.nlp.tasks import masked_lm as masked_lm_task
from official_td.modeling import activations

# Model Garden activation name -> transformers `hidden_act`, and back.
_TO_HF_ACTIVATION = {
    'gelu': 'gelu_new',
    activations.GELU_EXACT: 'gelu',
    'relu': 'relu',
}
_FROM_HF_ACTIVATION = {
    'gelu_new': 'gelu',
    'gelu_pytorch_tanh': 'gelu',
    'gelu': activations.GELU_EXACT,
    'relu': 'relu',
}
# The Model Garden's BERT LayerNorms all use this epsilon.
LAYER_NORM_EPS = 1e-12
MLM_HEAD_PREFIX = 'cls.'


@dataclasses.dataclass(frozen=True)
class WeightPair:
  """A Keras variable and the transformers state-dict entry it maps to.

  Attributes:
    variable: the Model Garden variable.
    hf_name: its name in `BertForMaskedLM`'s state dict.
    input_axes: for kernels, how many leading axes of `variable` are input
      axes (the transformers weight is `[out, in]`, 2-D); 0 for embedding
      tables (`[ids, width]` on both sides); None for vectors (flattened:
      the attention biases are `[heads, head_size]` here).
  """
  variable: tf.Variable
  hf_name: str
  input_axes: Optional[int] = None

  def to_hf(self) -> np.ndarray:
    """The variable's value in transformers' layout, float32."""
    value = self.variable.numpy().astype(np.float32)
    if self.input_axes is None:
      return value.reshape(-1)
    if self.input_axes == 0:
      return value
    inputs = int(np.prod(value.shape[:self.input_axes]))
    return np.ascontiguousarray(value.reshape(inputs, -1).T)

  def assign_from_hf(self, value: np.ndarray) -> None:
    """Sets the variable from a transformers array.

    Raises:
      ValueError: the array's shape is not the one `to_hf` gives for this
        variable, naming both.
    """
    value = np.asarray(value, np.float32)
    expected = self._hf_shape()
    if value.shape != expected:
      raise ValueError(f'{self.hf_name} has shape {value.shape}; the Model '
                       f'Garden weight it maps to needs {expected}.')
    if self.input_axes:
      value = value.T
    self.variable.assign(value.reshape(self.variable.shape))

  def _hf_shape(self):
    shape = tuple(self.variable.shape)
    if self.input_axes is None:
      return (int(np.prod(shape)),)
    if self.input_axes == 0:
      return shape
    inputs = int(np.prod(shape[:self.input_axes]))
    return (int(np.prod(shape)) // inputs, inputs)


_TABLE = 0


def _norm(layer, hf_prefix: str) -> List[WeightPair]:
  return [WeightPair(layer.gamma, f'{hf_prefix}.weight'),
          WeightPair(layer.beta, f'{hf_prefix}.bias')]


def _dense(layer, hf_prefix: str, input_axes: int = 1) -> List[WeightPair]:
  return [WeightPair(layer.kernel, f'{hf_prefix}.weight', input_axes),
          WeightPair(layer.bias, f'{hf_prefix}.bias')]


def _layer_pairs(block, index: int) -> List[WeightPair]:
  """A `TransformerEncoderBlock` (post-LN) and `bert.encoder.layer.{index}`."""
  prefix = f'bert.encoder.layer.{index}'
  attention = block._attention_layer  # pylint: disable=protected-access
  pairs = []
  for name in ('query', 'key', 'value'):
    pairs += _dense(getattr(attention, f'_{name}_dense'),
                    f'{prefix}.attention.self.{name}')
  # pylint: disable=protected-access
  pairs += _dense(attention._output_dense, f'{prefix}.attention.output.dense',
                  input_axes=2)
  pairs += _norm(block._attention_layer_norm,
                 f'{prefix}.attention.output.LayerNorm')
  pairs += _dense(block._intermediate_dense, f'{prefix}.intermediate.dense')
  pairs += _dense(block._output_dense, f'{prefix}.output.dense')
  pairs += _norm(block._output_layer_norm, f'{prefix}.output.LayerNorm')
  # pylint: enable=protected-access
  return pairs


def weight_pairs(encoder: networks.BertEncoderV2,
                 masked_lm: tf_keras.layers.Layer) -> List[WeightPair]:
  """Every weight of a built BERT pretrainer with its transformers name.

  Args:
    encoder: a built `BertEncoderV2` (or subclass, e.g. `TokenDropEncoder`)
      without an embedding projection.
    masked_lm: the pretrainer's built `MaskedLM` head.

  Returns:
    The pairs; the word embeddings appear once (tied to the MLM output).
  """
  # pylint: disable=protected-access
  pairs = [
      WeightPair(encoder._embedding_layer.embeddings,
                 'bert.embeddings.word_embeddings.weight', _TABLE),
      WeightPair(encoder._position_embedding_layer._position_embeddings,
                 'bert.embeddings.position_embeddings.weight', _TABLE),
      WeightPair(encoder._type_embedding_layer.embeddings,
                 'bert.embeddings.token_type_embeddings.weight', _TABLE),
      *_norm(encoder._embedding_norm_layer, 'bert.embeddings.LayerNorm'),
  ]
  for index, block in enumerate(encoder._transformer_layers):
    pairs += _layer_pairs(block, index)
  pairs += _dense(encoder._pooler_layer, 'bert.pooler.dense')
  # pylint: enable=protected-access
  pairs += _dense(masked_lm.dense, 'cls.predictions.transform.dense')
  pairs += _norm(masked_lm.layer_norm, 'cls.predictions.transform.LayerNorm')
  pairs.append(WeightPair(masked_lm.bias, 'cls.predictions.bias'))
  return pairs


def build_pretrainer(model: bert_configs.PretrainerConfig
                     ) -> models.BertPretrainerV2:
  """A built Model Garden `BertPretrainerV2` on a plain `BertEncoderV2`.

  Built by the Model Garden's own `MaskedLMTask`. Its `checkpoint_items`
  (`encoder`, `masked_lm`) restore from, and save to, the checkpoints of
  `train.py` and `task.init_checkpoint`.
  """
  plain = model.replace(encoder=encoders.EncoderConfig(
      type='bert_v2', bert_v2=model.encoder.get()), cls_heads=[])
  pretrainer = masked_lm_task.MaskedLMTask(
      masked_lm_task.MaskedLMConfig(model=plain)).build_model()
  ids = tf.zeros([1, 2], tf.int32)
  pretrainer(dict(input_word_ids=ids, input_mask=tf.ones_like(ids),
                  input_type_ids=ids, masked_lm_positions=ids))
  return pretrainer


def check_exportable(model: bert_configs.PretrainerConfig) -> None:
  """Raises ValueError naming a setting transformers' BERT cannot express."""
  bert = model.encoder.get()
  problems = []
  if model.encoder.type != 'bert':
    problems.append(f'task.model.encoder.type={model.encoder.type!r} (only '
                    "'bert' maps to transformers' BertModel)")
  if bert.norm_first:
    problems.append('task.model.encoder.bert.norm_first=true (transformers\' '
                    'BERT is post-LayerNorm only)')
  if bert.embedding_size and bert.embedding_size != bert.hidden_size:
    problems.append(f'task.model.encoder.bert.embedding_size='
                    f'{bert.embedding_size} != hidden_size (transformers\' '
                    'BERT has no embedding projection)')
  if bert.hidden_activation not in _TO_HF_ACTIVATION:
    problems.append(f'task.model.encoder.bert.hidden_activation='
                    f'{bert.hidden_activation!r} (exportable: '
                    f'{sorted(_TO_HF_ACTIVATION)})')
  if model.mlm_activation != bert.hidden_activation:
    problems.append(f'task.model.mlm_activation={model.mlm_activation!r} '
                    f'differs from hidden_activation={bert.hidden_activation!r}'
                    ' (transformers uses hidden_act for both)')
  if problems:
    raise ValueError('Cannot export to a transformers BERT: ' +
                     '; '.join(problems) + '.')


def hf_config(model: bert_configs.PretrainerConfig,
              pad_token_id: int) -> Dict[str, Any]:
  """The transformers `config.json` of a pretrainer config.

  Raises:
    ValueError: from `check_exportable`.
  """
  check_exportable(model)
  bert = model.encoder.get()
  return {
      'architectures': ['BertForMaskedLM'],
      'model_type': 'bert',
      'vocab_size': bert.vocab_size,
      'hidden_size': bert.hidden_size,
      'num_hidden_layers': bert.num_layers,
      'num_attention_heads': bert.num_attention_heads,
      'intermediate_size': bert.intermediate_size,
      'hidden_act': _TO_HF_ACTIVATION[bert.hidden_activation],
      'hidden_dropout_prob': bert.dropout_rate,
      'attention_probs_dropout_prob': bert.attention_dropout_rate,
      'max_position_embeddings': bert.max_position_embeddings,
      'type_vocab_size': bert.type_vocab_size,
      'initializer_range': bert.initializer_range,
      'layer_norm_eps': LAYER_NORM_EPS,
      'pad_token_id': pad_token_id,
      'position_embedding_type': 'absolute',
      'tie_word_embeddings': True,
      'torch_dtype': 'float32',
  }


def bert_config(config: Dict[str, Any], source: str
                ) -> encoders.BertEncoderConfig:
  """The Model Garden encoder config of a transformers BERT `config.json`.

  Args:
    config: the parsed `config.json`.
    source: the file, for error messages.

  Raises:
    ValueError: naming the setting our encoder cannot reproduce (model type,
      activation, position embedding type, LayerNorm epsilon).
  """
  problems = []
  if config.get('model_type') != 'bert':
    problems.append(f"model_type={config.get('model_type')!r} (need 'bert')")
  activation = config.get('hidden_act', 'gelu')
  if activation not in _FROM_HF_ACTIVATION:
    problems.append(f'hidden_act={activation!r} (supported: '
                    f'{sorted(_FROM_HF_ACTIVATION)})')
  position_type = config.get('position_embedding_type', 'absolute')
  if position_type != 'absolute':
    problems.append(f'position_embedding_type={position_type!r}')
  eps = config.get('layer_norm_eps', LAYER_NORM_EPS)
  if not np.isclose(eps, LAYER_NORM_EPS, rtol=0, atol=1e-13):
    problems.append(f'layer_norm_eps={eps} (the Model Garden BERT uses '
                    f'{LAYER_NORM_EPS})')
  if problems:
    raise ValueError(f'{source} describes a model the Model Garden BERT '
                     'encoder cannot reproduce: ' + '; '.join(problems) + '.')
  return encoders.BertEncoderConfig(
      vocab_size=config['vocab_size'],
      hidden_size=config['hidden_size'],
      num_layers=config['num_hidden_layers'],
      num_attention_heads=config['num_attention_heads'],
      intermediate_size=config['intermediate_size'],
      hidden_activation=_FROM_HF_ACTIVATION[activation],
      dropout_rate=config.get('hidden_dropout_prob', 0.1),
      attention_dropout_rate=config.get('attention_probs_dropout_prob', 0.1),
      max_position_embeddings=config['max_position_embeddings'],
      type_vocab_size=config.get('type_vocab_size', 2),
      initializer_range=config.get('initializer_range', 0.02))
