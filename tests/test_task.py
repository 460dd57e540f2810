"""Tests of the token-dropping masked-LM task on real TFRecords."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras

from official.core import task_factory
from official_td.tasks import drop_metrics
from tests import real_data
from tests import task_configs


def _task_and_model(experiment='bert/token_drop'):
  config = task_configs.tiny_experiment(experiment)
  task = task_factory.get_task(config.task)
  model = task.build_model()
  return task, model


def _train(task, model, features, steps, learning_rate=3e-3):
  optimizer = tf_keras.optimizers.Adam(learning_rate)
  metrics = task.build_metrics(training=True)
  step = tf.function(lambda x: task.train_step(x, model, optimizer, metrics))
  return [float(step(features)[task.loss]) for _ in range(steps)], metrics


class TokenDropTaskTest(tf.test.TestCase, parameterized.TestCase):

  def test_training_lowers_the_loss_on_real_text(self):
    task, model = _task_and_model()
    dataset = iter(task.build_inputs(task.task_config.train_data))
    features = next(dataset)
    losses, metrics = _train(task, model, features, steps=40)
    self.assertLess(np.mean(losses[-5:]), np.mean(losses[:5]) - 0.5)
    by_name = {m.name: m for m in metrics}
    dropped_share = float(by_name[drop_metrics.DROPPED_SHARE].result())
    self.assertBetween(dropped_share, 0.0, 1.0)

  def test_step_changes_the_scores_of_the_ids_seen_only(self):
    task, model = _task_and_model()
    features = next(iter(task.build_inputs(task.task_config.train_data)))
    before = model.importance_recorder.importance.numpy()
    _train(task, model, features, steps=1)
    after = model.importance_recorder.importance.numpy()
    ids = features['masked_lm_ids'].numpy()
    weights = features['masked_lm_weights'].numpy()
    seen = np.zeros_like(before, bool)
    seen[ids[weights > 0]] = True
    self.assertTrue(np.all(after[seen] != before[seen]))
    self.assertAllEqual(after[~seen], before[~seen])

  def test_baseline_neither_drops_nor_scores(self):
    task, model = _task_and_model('bert/token_drop_baseline')
    features = next(iter(task.build_inputs(task.task_config.train_data)))
    before = model.importance_recorder.importance.numpy()
    losses, metrics = _train(task, model, features, steps=3)
    self.assertAllEqual(model.importance_recorder.importance.numpy(), before)
    self.assertNotIn(drop_metrics.DROPPED_SHARE, [m.name for m in metrics])
    self.assertTrue(np.all(np.isfinite(losses)))

  def test_pretraining_leaves_the_pooler_as_initialised(self):
    # What export_tfhub.pooler_note tells every user of pooled_output.
    task, model = _task_and_model()
    features = next(iter(task.build_inputs(task.task_config.train_data)))
    pooler = model.encoder_network.pooler_layer.kernel
    layer = model.encoder_network.transformer_layers[1].trainable_weights[0]
    pooler_before, layer_before = pooler.numpy(), layer.numpy()
    _train(task, model, features, steps=2)
    self.assertAllEqual(pooler.numpy(), pooler_before)
    self.assertNotAllClose(layer.numpy(), layer_before)

  def test_validation_uses_the_full_encoder(self):
    task, model = _task_and_model()
    features = next(iter(task.build_inputs(task.task_config.validation_data)))
    metrics = task.build_metrics(training=False)
    logs = task.validation_step(features, model, metrics)
    outputs = model(features, training=False)
    self.assertNotIn('kept_positions', outputs)
    expected = task.build_losses(features, outputs, task.build_metrics())
    self.assertAllClose(logs[task.loss], expected)

  def test_kept_share_of_targets(self):
    kept = tf.constant([[0, 2, 4], [1, 2, 3]])
    positions = tf.constant([[2, 3, 0], [1, 5, 2]])  # slot 3: padding
    weights = tf.constant([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    share = drop_metrics.kept_share_of_targets(
        drop_metrics.kept_mask(kept, seq_length=6), positions, weights)
    # 2 -> kept, 3 -> not, 1 -> kept, 5 -> not; the padded slots (both kept)
    # count for nothing.
    self.assertAllClose(share, 0.5)


if __name__ == '__main__':
  tf.test.main()
