"""Masked-LM pretraining with token dropping (Hou et al., ACL 2022).

Subclasses the Model Garden's `MaskedLMTask`. Each training step scores the
tokens with the `TokenImportanceRecorder`, runs the `TokenDropEncoder` with
dropping, and afterwards folds the step's per-position MLM losses into the
score table. Validation uses the full encoder. The strategy ('dynamic',
'static', 'random') chooses the scores; with 'none' the same task is the
baseline: no scoring, no dropping.
"""

import dataclasses
from typing import Dict, List, Tuple

import tensorflow as tf
import tf_keras

from official.core import task_factory
from official.nlp.tasks import masked_lm
from official_td.configs import sequence_phases
from official_td.configs import token_drop_config
from official_td.data import token_frequencies
from official_td.data import vocabulary as vocabulary_lib
from official_td.modeling import consistency
from official_td.modeling import token_drop_encoder
from official_td.modeling import token_importance
from official_td.tasks import drop_metrics
from official_td.tasks import input_checks

STRATEGIES = ('dynamic', 'static', 'random', 'none')
CONSISTENCY_LOSS = 'consistency_loss'
# The step's float32 scores, among the outputs passed to process_metrics.
IMPORTANCE_KEY = 'token_importance'
# Weighted MLM targets with a NaN or infinite loss, left out of the table.
NONFINITE_TARGETS = 'nonfinite_mlm_targets'


@dataclasses.dataclass
class TokenDropMaskedLMConfig(masked_lm.MaskedLMConfig):
  """`MaskedLMConfig` plus token dropping.

  Attributes:
    strategy: how tokens are scored: 'dynamic' (cumulative MLM loss per
      vocabulary id), 'static' (the most frequent ids dropped first, from
      `token_drop.frequency_file`), 'random' (K random positions each step)
      or 'none' (no dropping: the baseline).
    token_drop: keep ratio, layer split, importance settings, vocabulary.
    sctd: the ScTD semantic-consistency loss (off by default).
    short_sequence_phase: the first training steps on shorter sequences
      (off by default); `TokenDropTrainer` switches the input.
  """
  strategy: str = 'dynamic'
  token_drop: token_drop_config.TokenDropConfig = dataclasses.field(
      default_factory=token_drop_config.TokenDropConfig)
  sctd: token_drop_config.SctdConfig = dataclasses.field(
      default_factory=token_drop_config.SctdConfig)
  short_sequence_phase: sequence_phases.ShortSequencePhaseConfig = (
      dataclasses.field(
          default_factory=sequence_phases.ShortSequencePhaseConfig))


@task_factory.register_task_cls(TokenDropMaskedLMConfig)
class TokenDropMaskedLMTask(masked_lm.MaskedLMTask):
  """Masked LM whose training steps drop unimportant tokens.

  Raises (at construction, before any training):
    ValueError / FileNotFoundError: see `official_td.tasks.input_checks`.
  """

  def __init__(self, params: TokenDropMaskedLMConfig, logging_dir=None,
               name=None):
    super().__init__(params, logging_dir=logging_dir, name=name)
    self._vocab = self._check_config(params)
    self._token_counts = None
    if params.strategy == 'static':
      self._token_counts = token_frequencies.read_frequency_file(
          params.token_drop.frequency_file, self._vocab)

  @staticmethod
  def _check_config(params) -> vocabulary_lib.Vocabulary:
    if params.strategy not in STRATEGIES:
      raise ValueError(f'task.strategy={params.strategy!r} is not one of '
                       f'{STRATEGIES}.')
    encoder = params.model.encoder
    if encoder.type != 'bert':
      raise ValueError('Token dropping needs task.model.encoder.type=bert, '
                       f'got {encoder.type!r}.')
    if params.model.cls_heads or params.train_data.use_next_sentence_label:
      raise ValueError('Token-dropping pretraining has no next-sentence '
                       'prediction: set task.model.cls_heads=[] and '
                       'task.train_data.use_next_sentence_label=false.')
    vocab = vocabulary_lib.Vocabulary(params.token_drop.vocab_file,
                                      lower_case=params.token_drop.lower_case)
    input_checks.check_encoder_options(encoder)
    input_checks.check_vocab_matches_encoder(vocab, encoder)
    input_checks.check_init_checkpoint(params.init_checkpoint, encoder, vocab)
    phase = params.short_sequence_phase
    datasets = {'train_data': params.train_data,
                'validation_data': params.validation_data}
    if phase.steps:
      datasets['short_sequence_phase.data'] = phase.data
    for name, data in datasets.items():
      if not data.input_path:
        if name == 'short_sequence_phase.data':
          raise ValueError(
              f'task.short_sequence_phase.steps={phase.steps} needs '
              'task.short_sequence_phase.data.input_path (TFRecords of the '
              'short sequences); or set steps=0.')
        continue  # e.g. no validation data in --mode=train
      setting = f'task.{name}.input_path'
      files = input_checks.check_input_files(data.input_path, setting)
      input_checks.check_data_metadata(files, vocab, data.seq_length,
                                       f'task.{name}')
      input_checks.check_sequence_length(data.seq_length, encoder,
                                         f'task.{name}')
    if params.strategy != 'none':
      for name, data in datasets.items():
        if name != 'validation_data':
          input_checks.check_token_drop_settings(params.token_drop, encoder,
                                                 data.seq_length)
    if params.sctd.enabled:
      input_checks.check_sctd_settings(params.sctd, params.strategy,
                                       encoder.get().num_layers)
    return vocab

  @property
  def vocabulary(self) -> vocabulary_lib.Vocabulary:
    return self._vocab

  @property
  def drops_tokens(self) -> bool:
    return self.task_config.strategy != 'none'

  def _build_encoder(self, encoder_cfg) -> token_drop_encoder.TokenDropEncoder:
    """The Model Garden's `build_encoder`, as a `TokenDropEncoder`."""
    drop = self.task_config.token_drop
    return token_drop_encoder.TokenDropEncoder(
        keep_ratio=drop.keep_ratio,
        drop_start_layer=drop.drop_start_layer,
        drop_end_layer=drop.drop_end_layer,
        **token_drop_encoder.encoder_kwargs(encoder_cfg.get()))

  def build_model(self, params=None) -> tf_keras.Model:
    """BertPretrainerV2 on a TokenDropEncoder, with `importance_recorder`."""
    model = super().build_model(params)  # MaskedLMTask, via _build_encoder
    bert = (params or self.task_config.model).encoder.get()
    drop = self.task_config.token_drop
    special = self._vocab.special_ids
    strategy = self.task_config.strategy
    # An attribute of the model, so the table is in every model checkpoint.
    model.importance_recorder = token_importance.TokenImportanceRecorder(
        vocab_size=bert.vocab_size,
        pad_id=special.pad,
        always_keep_ids=special.always_kept,
        cls_id=special.cls,
        beta=drop.importance_beta,
        initial_score=drop.importance_initial_score,
        strategy='dynamic' if strategy == 'none' else strategy,
        static_scores=(None if self._token_counts is None else
                       token_frequencies.static_importance(
                           self._token_counts)),
        name='token_importance')
    return model

  def mlm_losses(self, labels: Dict[str, tf.Tensor],
                 model_outputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    """Per-position MLM cross-entropy, `[batch, max_predictions]` float32."""
    return tf_keras.losses.sparse_categorical_crossentropy(
        labels['masked_lm_ids'],
        tf.cast(model_outputs['mlm_logits'], tf.float32),
        from_logits=True)

  def build_losses(self, labels, model_outputs, metrics,
                   aux_losses=None) -> tf.Tensor:
    """Weighted mean MLM loss plus `aux_losses` (scalar float32).

    Used by validation; training steps compute the same in
    `_forward_backward`, which also needs the per-position losses.
    """
    with tf.name_scope('TokenDropMaskedLMTask/losses'):
      mlm_loss = _weighted_mean(self.mlm_losses(labels, model_outputs),
                                labels['masked_lm_weights'])
      metrics = {metric.name: metric for metric in metrics}
      metrics['lm_example_loss'].update_state(mlm_loss)
      if aux_losses:
        mlm_loss += tf.add_n(aux_losses)
      return mlm_loss

  def build_metrics(self, training=None) -> List[tf_keras.metrics.Metric]:
    metrics = super().build_metrics(training)
    if training and self.drops_tokens:
      metrics.extend(drop_metrics.build(self._vocab.size))
      metrics.append(tf_keras.metrics.Sum(name=NONFINITE_TARGETS))
    if training and self.task_config.sctd.enabled:
      metrics.append(tf_keras.metrics.Mean(name=CONSISTENCY_LOSS))
    return metrics

  def train_step(self, inputs, model: tf_keras.Model,
                 optimizer: tf_keras.optimizers.Optimizer, metrics):
    """Forward with dropping, backward, then the importance update.

    Scores and the top-K choice are computed here in float32, outside any
    Keras call (which would cast them to a mixed policy's compute dtype);
    the encoder receives int32 kept positions. Random draws come from
    `token_importance.step_seed` (run seed, step, replica).

    With ScTD, every F-th step takes the branch of a `tf.cond` that also runs
    the full pass. Each branch computes its own gradients: differentiating
    through the cond instead fails to compile with XLA in TF 2.20
    (StridedSliceGrad of the position embedding gets an unknown shape).
    """
    model_inputs = dict(inputs)
    if self.drops_tokens:
      importance, kept = self.kept_positions(model, inputs,
                                             optimizer.iterations)
      model_inputs[token_drop_encoder.KEPT_POSITIONS_KEY] = kept
    has_grad = []  # which trainable variables get a gradient, set in tracing
    by_name = {m.name: m for m in metrics}
    sctd = self.task_config.sctd
    if sctd.enabled:
      is_sctd_step = tf.equal(
          tf.math.floormod(optimizer.iterations, sctd.every_n_steps), 0)
      step = tf.cond(
          is_sctd_step,
          lambda: self._forward_backward(model, optimizer, model_inputs,
                                         has_grad, True),
          lambda: self._forward_backward(model, optimizer, model_inputs,
                                         has_grad, False))
      by_name[CONSISTENCY_LOSS].update_state(
          step['consistency_loss'],
          sample_weight=tf.cast(is_sctd_step, tf.float32))
    else:
      step = self._forward_backward(model, optimizer, model_inputs, has_grad,
                                    False)
    # Variables cannot pass through tf.cond: pair the gradients here (the
    # model is built by now, so the list is complete).
    tvars = [v for v, used in zip(model.trainable_variables, has_grad)
             if used]
    optimizer.apply_gradients(zip(step['grads'], tvars))
    outputs = step['outputs']
    if self.drops_tokens:
      model.importance_recorder.update(inputs['masked_lm_ids'],
                                       outputs['mlm_losses'],
                                       inputs['masked_lm_weights'])
      outputs[IMPORTANCE_KEY] = importance
      outputs[token_drop_encoder.KEPT_POSITIONS_KEY] = kept
      by_name[NONFINITE_TARGETS].update_state(tf.reduce_sum(tf.cast(
          token_importance.nonfinite_targets(outputs['mlm_losses'],
                                             inputs['masked_lm_weights']),
          tf.float32)))
    by_name['lm_example_loss'].update_state(step['mlm_loss'])
    self.process_metrics(metrics, inputs, outputs)
    return {self.loss: step['loss']}

  def kept_positions(self, model: tf_keras.Model,
                     features: Dict[str, tf.Tensor],
                     step: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """What a training step at `step` keeps of `features`, on this replica.

    Args:
      model: from `build_model`.
      features: the batch; `input_word_ids` `[batch, seq_len]` int32.
      step: scalar int, the global step (`optimizer.iterations`).

    Returns:
      `(importance, kept)`: `[batch, seq_len]` float32 scores and
      `[batch, K]` int32 kept positions, ascending. A function of the run
      seed, the step, the replica and the table, whatever the precision
      policy.
    """
    tie_break_seed, score_seed = tf.unstack(
        tf.random.experimental.stateless_split(
            token_importance.step_seed(self.task_config.token_drop.seed, step),
            num=2))
    importance = model.importance_recorder(features['input_word_ids'],
                                           seed=score_seed)
    kept = model.encoder_network.select_kept_positions(importance,
                                                       seed=tie_break_seed)
    return importance, kept

  def _forward_backward(self, model, optimizer, model_inputs,
                        has_grad: List[bool],
                        with_consistency: bool) -> Dict[str, object]:
    """One forward and backward pass; returns losses, gradients, outputs.

    The returned structure is the same with and without the consistency
    term, as `tf.cond` needs; `grads` holds the non-None gradients, and
    `has_grad` (filled on first call, checked on later ones) says which
    of `model.trainable_variables` they belong to. Under `mixed_float16`
    the optimizer is a `LossScaleOptimizer` (the Model Garden wraps it when
    `runtime.mixed_precision_dtype=float16`): the loss is scaled and the
    gradients unscaled, as `base_task.Task.train_step` does.
    """
    loss_scaling = isinstance(optimizer,
                              tf_keras.mixed_precision.LossScaleOptimizer)
    with tf.GradientTape() as tape:
      outputs = model(model_inputs, training=True)
      mlm_losses = self.mlm_losses(model_inputs, outputs)
      mlm_loss = _weighted_mean(mlm_losses, model_inputs['masked_lm_weights'])
      loss = mlm_loss + (tf.add_n(model.losses) if model.losses else 0.0)
      consistency_loss = tf.constant(0.0)
      if with_consistency:
        consistency_loss = self._consistency_loss(model, model_inputs,
                                                  outputs)
        loss += consistency_loss
      scaled_loss = loss
      if self.task_config.scale_loss:
        scaled_loss /= tf.distribute.get_strategy().num_replicas_in_sync
      if loss_scaling:
        scaled_loss = optimizer.get_scaled_loss(scaled_loss)
    grads = tape.gradient(scaled_loss, model.trainable_variables)
    # MLM-only pretraining gives the pooler no gradient (there is no
    # next-sentence head), with or without the consistency term.
    used = [g is not None for g in grads]
    if has_grad and has_grad != used:
      raise ValueError('The ScTD and plain steps train different variables.')
    has_grad[:] = used
    grads = [g for g in grads if g is not None]
    if loss_scaling:
      grads = optimizer.get_unscaled_gradients(grads)
    return {'loss': loss, 'mlm_loss': mlm_loss,
            'consistency_loss': consistency_loss,
            'grads': grads,
            'outputs': {'mlm_logits': outputs['mlm_logits'],
                        'mlm_losses': mlm_losses}}

  def _consistency_loss(self, model, model_inputs, dropped_outputs):
    """ScTD's KL term from a full pass (no dropping) of the same batch."""
    sctd = self.task_config.sctd
    # Encoder inputs only: without masked_lm_positions the pretrainer skips
    # the MLM head, which the consistency loss does not need.
    full_outputs = model(
        {k: model_inputs[k] for k in ('input_word_ids', 'input_mask',
                                      'input_type_ids')}, training=True)
    if sctd.kl_normalization == 'masked_tokens':
      normalizer = tf.reduce_sum(model_inputs['masked_lm_weights'])
    else:
      normalizer = tf.shape(model_inputs['input_word_ids'])[0]
    return consistency.consistency_loss(full_outputs, dropped_outputs,
                                        sctd.layers, sctd.weights, normalizer)

  def process_metrics(self, metrics, labels, model_outputs):
    super().process_metrics(metrics, labels, model_outputs)
    kept = model_outputs.get(token_drop_encoder.KEPT_POSITIONS_KEY)
    importance = model_outputs.get(IMPORTANCE_KEY)
    if kept is not None and importance is not None:
      drop_metrics.update({m.name: m for m in metrics}, labels, importance,
                          kept)


def _weighted_mean(values: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
  """sum(values * weights) / sum(weights), 0 when all weights are 0."""
  return tf.math.divide_no_nan(tf.reduce_sum(values * weights),
                               tf.reduce_sum(weights))
