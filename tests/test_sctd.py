"""ScTD: the semantic-consistency loss and its training step."""

import os

import gin
import numpy as np
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official.core import task_factory
from official.modeling import hyperparams
from official_td.modeling import consistency
from official_td.modeling import token_drop_encoder as tde
from official_td.tasks import token_drop_masked_lm
from tests import real_data
from tests import task_configs
from tests.test_distributed import _distinct_frequency_file


def _task(keep_ratio=0.5, sctd=True, weights=(0.05, 0.05), every=1,
          frequency_file=None):
  config = task_configs.tiny_experiment()
  config.task.token_drop.keep_ratio = keep_ratio
  config.task.sctd.enabled = sctd
  config.task.sctd.weights = list(weights)
  config.task.sctd.every_n_steps = every
  if frequency_file:  # static, no ties: the same tokens kept every run
    config.task.strategy = 'static'
    config.task.token_drop.frequency_file = frequency_file
  task = task_factory.get_task(config.task)
  return task, task.build_model()


def _encoder_inputs(features):
  return {k: tf.constant(features[k])
          for k in ('input_word_ids', 'input_mask', 'input_type_ids')}


def _both_passes(model, features, keep_ratio):
  encoder = model.encoder_network
  inputs = _encoder_inputs(features)
  full = encoder(inputs, training=True)
  kept = encoder.select_kept_positions(real_data.importance_like(
      features['input_word_ids']))
  dropped = encoder(dict(inputs, kept_positions=kept), training=True)
  return full, dropped


class ConsistencyLossTest(tf.test.TestCase):

  def test_zero_without_dropping_positive_with_it(self):
    features = real_data.batch()
    for keep_ratio, check in ((1.0, self.assertAllClose),
                              (0.5, self.assertGreater)):
      _, model = _task(keep_ratio=keep_ratio)
      model(dict(features), training=False)
      full, dropped = _both_passes(model, features, keep_ratio)
      self.assertIn(tde.KEPT_POSITIONS_KEY, dropped)
      loss = consistency.consistency_loss(full, dropped, [-2, -1],
                                          [0.05, 0.05], normalizer=8.0)
      if keep_ratio == 1.0:
        check(float(loss), 0.0, atol=1e-7)
      else:
        check(float(loss), 1e-6)

  def test_gradients_reach_both_passes(self):
    features = real_data.batch()
    _, model = _task()
    model(dict(features), training=False)
    with tf.GradientTape(persistent=True) as tape:
      full, dropped = _both_passes(model, features, 0.5)
      loss = consistency.consistency_loss(full, dropped, [-2, -1],
                                          [0.05, 0.05], normalizer=8.0)
    for outputs in (full, dropped):
      grads = tape.gradient(loss, [outputs['encoder_outputs'][-2],
                                   outputs['encoder_outputs'][-1]])
      for grad in grads:
        self.assertIsNotNone(grad)
        self.assertGreater(float(tf.reduce_max(tf.abs(grad[:, 0]))), 0.0)
    variables = tape.gradient(loss, model.encoder_network.trainable_variables)
    self.assertTrue(any(g is not None and float(tf.reduce_max(tf.abs(g))) > 0
                        for g in variables))

  def test_layers_and_weights_must_match(self):
    with self.assertRaisesRegex(ValueError, 'one weight per layer'):
      consistency.consistency_loss({}, {}, [-1], [0.05, 0.05], 1.0)

  def test_authors_weighting_by_hand(self):
    # fairseq's criterion: (sum_masked MLM + 0.05 * sum_b KL(-2)
    # + 0.05 * sum_b KL(-1)) / n_masked, i.e. mean MLM + this term.
    rng = np.random.default_rng(0)
    full = {'encoder_outputs': [rng.normal(size=(3, 4, 5)).astype(np.float32)
                                for _ in range(2)]}
    dropped = {'encoder_outputs': [
        rng.normal(size=(3, 4, 5)).astype(np.float32) for _ in range(2)]}

    def kl(p_logits, q_logits):  # per row, on [CLS] (position 0)
      p = np.exp(p_logits[:, 0]) / np.exp(p_logits[:, 0]).sum(-1, keepdims=1)
      q = np.exp(q_logits[:, 0]) / np.exp(q_logits[:, 0]).sum(-1, keepdims=1)
      return (p * (np.log(p) - np.log(q))).sum(-1)

    n_masked = 7.0
    expected = (0.05 * kl(full['encoder_outputs'][0],
                          dropped['encoder_outputs'][0]).sum()
                + 0.02 * kl(full['encoder_outputs'][1],
                            dropped['encoder_outputs'][1]).sum()) / n_masked
    got = consistency.consistency_loss(full, dropped, [-2, -1], [0.05, 0.02],
                                       normalizer=n_masked)
    self.assertAllClose(got, expected, rtol=1e-5)


def _reference_weights(model, seed=0):
  """Fixed random weights of `model`'s shapes, the same for every model."""
  rng = np.random.default_rng(seed)
  return [rng.normal(scale=0.05, size=w.shape).astype(w.dtype)
          for w in model.get_weights()]


def _step(task, model, learning_rate=0.5, jit_compile=False):
  """A compiled train step of a built model, and its metrics."""
  model(dict(real_data.batch()), training=False)
  optimizer = tf_keras.optimizers.SGD(learning_rate)
  metrics = task.build_metrics(training=True)
  step = tf.function(lambda x: task.train_step(x, model, optimizer, metrics),
                     jit_compile=jit_compile)
  return step, metrics


class SctdStepTest(tf.test.TestCase):

  def _run(self, task, model, steps=3):
    step, metrics = _step(task, model)
    features = real_data.batch()
    losses = [float(step(dict(features))[task.loss]) for _ in range(steps)]
    return losses, {m.name: m.result().numpy() for m in metrics}

  def test_weight_zero_equals_the_plain_step(self):
    frequency_file = _distinct_frequency_file(
        self.create_tempdir().full_path)
    plain_task, plain = _task(sctd=False, frequency_file=frequency_file)
    zero_task, zero = _task(weights=(0.0, 0.0),
                            frequency_file=frequency_file)
    features = real_data.batch()
    plain(dict(features), training=False)
    zero(dict(features), training=False)
    zero.set_weights(plain.get_weights())
    plain_losses, _ = self._run(plain_task, plain)
    zero_losses, logs = self._run(zero_task, zero)
    self.assertAllClose(zero_losses, plain_losses, rtol=1e-6)
    for a, b in zip(zero.get_weights(), plain.get_weights()):
      self.assertAllClose(a, b, rtol=1e-5, atol=1e-6)
    self.assertEqual(logs[token_drop_masked_lm.CONSISTENCY_LOSS], 0.0)

  def test_consistency_loss_is_logged_and_added(self):
    task, model = _task(every=1)
    _, logs = self._run(task, model)
    consistency_loss = logs[token_drop_masked_lm.CONSISTENCY_LOSS]
    self.assertGreater(consistency_loss, 0.0)
    self.assertLess(consistency_loss, 1.0)

  def test_full_pass_runs_only_every_f_steps(self):
    task, model = _task(every=4)
    step, metrics = _step(task, model, learning_rate=0.1)
    for _ in range(5):  # steps 0..4: the full pass runs at 0 and 4
      step(dict(real_data.batch()))
    by_name = {m.name: m for m in metrics}
    self.assertEqual(float(by_name[token_drop_masked_lm.CONSISTENCY_LOSS]
                           .count.numpy()), 2.0)

  def test_default_normalization_is_per_masked_token(self):
    features = real_data.batch()
    self.assertEqual(_task()[0].task_config.sctd.kl_normalization,
                     'masked_tokens')
    logged = {}
    for normalization in ('masked_tokens', 'sequences'):
      task, model = _task(every=1)
      task.task_config.sctd.kl_normalization = normalization
      model(dict(features), training=False)
      model.set_weights(_reference_weights(model))
      step, metrics = _step(task, model)
      step(dict(features))  # step 0: the KL of the initial weights
      logged[normalization] = float({m.name: m for m in metrics}[
          token_drop_masked_lm.CONSISTENCY_LOSS].result())
    masked_per_sequence = (features['masked_lm_weights'].sum()
                           / features['masked_lm_weights'].shape[0])
    self.assertGreater(masked_per_sequence, 1.5)  # the two really differ
    self.assertAllClose(logged['sequences'] / logged['masked_tokens'],
                        masked_per_sequence, rtol=1e-4)

  def test_under_xla(self):
    task, model = _task(every=2)
    step, _ = _step(task, model, learning_rate=0.1, jit_compile=True)
    losses = [float(step(dict(real_data.batch()))[task.loss])
              for _ in range(3)]
    self.assertTrue(np.all(np.isfinite(losses)))


class SctdSelectionTest(tf.test.TestCase):

  def tearDown(self):
    gin.clear_config()
    super().tearDown()

  def test_experiment_yaml_and_gin_agree(self):
    registered = exp_factory.get_exp_config('bert/token_drop_sctd')
    self.assertTrue(registered.task.sctd.enabled)
    self.assertFalse(exp_factory.get_exp_config(
        'bert/token_drop').task.sctd.enabled)
    experiments = os.path.join(real_data.REPO, 'experiments')
    by_yaml = hyperparams.override_params_dict(
        exp_factory.get_exp_config('bert/token_drop'),
        os.path.join(experiments, 'sctd.yaml'), is_strict=True)
    gin.parse_config_files_and_bindings(
        [os.path.join(experiments, 'sctd.gin')], None)
    by_gin = exp_factory.get_exp_config('bert/token_drop')
    self.assertEqual(by_yaml.as_dict(), registered.as_dict())
    self.assertEqual(by_gin.as_dict(), registered.as_dict())

  def test_sctd_on_the_baseline_fails_before_training(self):
    config = task_configs.tiny_experiment('bert/token_drop_baseline')
    config.task.sctd.enabled = True
    with self.assertRaisesRegex(ValueError, 'needs token dropping'):
      task_factory.get_task(config.task)


if __name__ == '__main__':
  tf.test.main()
