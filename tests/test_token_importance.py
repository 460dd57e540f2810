"""Tests of TokenImportanceRecorder and select_kept_positions on real batches."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from official_td.modeling import token_importance
from tests import real_data


def _recorder(beta=0.995, initial_score=10.0, strategy='dynamic'):
  special = real_data.vocab().special_ids
  return token_importance.TokenImportanceRecorder(
      vocab_size=real_data.vocab().size, pad_id=special.pad,
      always_keep_ids=special.always_kept, cls_id=special.cls, beta=beta,
      initial_score=initial_score, strategy=strategy)


def _numpy_update(table, ids, losses, weights, beta):
  """Reference: per-id weighted mean over the step, then one moving average."""
  table = table.copy()
  for token_id in np.unique(ids[weights > 0]):
    in_id = (ids == token_id) & (weights > 0)
    mean = np.sum(losses[in_id] * weights[in_id]) / np.sum(weights[in_id])
    table[token_id] = beta * table[token_id] + (1 - beta) * mean
  return table


class TokenImportanceRecorderTest(tf.test.TestCase, parameterized.TestCase):

  def test_duplicate_ids_update_with_the_mean_of_their_losses(self):
    features = real_data.batch(batch_size=16)
    ids = features['masked_lm_ids']
    weights = features['masked_lm_weights']
    values, counts = np.unique(ids[weights > 0], return_counts=True)
    repeated = values[counts > 1]
    self.assertNotEmpty(repeated, 'real batch should repeat some ids')
    losses = np.random.default_rng(0).uniform(0, 8, ids.shape).astype(
        np.float32)
    recorder = _recorder(beta=0.9)
    table = recorder.update(ids, losses, weights).numpy()
    for token_id in repeated:
      mask = (ids == token_id) & (weights > 0)
      expected = 0.9 * 10.0 + 0.1 * losses[mask].mean()
      self.assertAllClose(table[token_id], expected, rtol=1e-6)

  def test_zero_weight_slots_change_nothing(self):
    features = real_data.batch(batch_size=8)
    ids = features['masked_lm_ids'].copy()
    weights = features['masked_lm_weights'].copy()
    losses = np.random.default_rng(1).uniform(0, 8, ids.shape).astype(
        np.float32)
    # Give padded slots ids and big losses: they must still count for nothing.
    padding = weights == 0
    self.assertTrue(padding.any(), 'real batch should have padded slots')
    ids[padding] = 7
    losses[padding] = 1000.0
    weights_without = weights.copy()
    recorder = _recorder()
    with_padding = recorder.update(ids, losses, weights).numpy()
    reference = _recorder()
    real = ~padding
    without_padding = reference.update(
        ids[real][None], losses[real][None], weights_without[real][None])
    self.assertAllClose(with_padding, without_padding.numpy())
    if 7 not in ids[real]:
      self.assertEqual(with_padding[7], 10.0)

  def test_matches_numpy_reference_over_steps(self):
    recorder = _recorder(beta=0.95)
    table = np.full([real_data.vocab().size], 10.0, np.float32)
    rng = np.random.default_rng(2)
    for step in range(4):
      features = real_data.batch(batch_size=8, index=step)
      ids, weights = features['masked_lm_ids'], features['masked_lm_weights']
      losses = rng.uniform(0, 9, ids.shape).astype(np.float32)
      recorder.update(ids, losses, weights)
      table = _numpy_update(table, ids, losses, weights, 0.95)
    self.assertAllClose(recorder.importance.numpy(), table, rtol=1e-5)

  def test_ids_not_present_are_untouched(self):
    features = real_data.batch(batch_size=8)
    ids, weights = features['masked_lm_ids'], features['masked_lm_weights']
    recorder = _recorder()
    table = recorder.update(ids, np.ones_like(weights), weights).numpy()
    seen = np.zeros_like(table, bool)
    seen[ids[weights > 0]] = True
    self.assertAllEqual(table[~seen], np.full([(~seen).sum()], 10.0))
    self.assertTrue(np.all(table[seen] < 10.0))

  def test_special_tokens_keep_their_treatment_after_many_updates(self):
    special = real_data.vocab().special_ids
    recorder = _recorder(beta=0.9)
    features = real_data.batch(batch_size=8)
    ids = features['masked_lm_ids'].copy()
    weights = np.ones_like(features['masked_lm_weights'])
    # Adversarial: [PAD] gets a huge loss and the always-kept ids a tiny one,
    # with full weight, for many steps; the table itself follows them...
    ids[:, 0], ids[:, 1], ids[:, 2] = special.pad, special.cls, special.mask
    ids[:, 3] = special.sep
    losses = np.full(ids.shape, 5.0, np.float32)
    losses[:, 0], losses[:, 1:4] = 100.0, 0.0
    for _ in range(300):
      recorder.update(ids, losses, weights)
    table = recorder.importance.numpy()
    self.assertGreater(table[special.pad], table[special.cls])
    # ...but the scores used for dropping do not.
    word_ids = features['input_word_ids']
    scores = recorder(word_ids).numpy()
    is_pad = word_ids == special.pad
    is_kept = np.isin(word_ids, special.always_kept)
    self.assertTrue(is_pad.any() or is_kept.any())
    self.assertTrue(np.all(scores[is_pad] < scores[~is_pad].min()))
    self.assertTrue(np.all(scores[is_kept] > scores[~is_kept].max()))
    num_kept = int(min(np.sum(~is_pad, axis=1)))
    kept = token_importance.select_kept_positions(scores, num_kept).numpy()
    for row in range(word_ids.shape[0]):
      kept_ids = word_ids[row, kept[row]]
      self.assertNotIn(special.pad, kept_ids)
      always = np.flatnonzero(is_kept[row])
      if len(always) <= num_kept:
        self.assertContainsSubset(always.tolist(), kept[row].tolist())

  def test_nonfinite_losses_leave_their_ids_untouched(self):
    features = real_data.batch(batch_size=8)
    ids, weights = features['masked_lm_ids'], features['masked_lm_weights']
    losses = np.random.default_rng(1).uniform(1, 8, ids.shape).astype(
        np.float32)
    weighted = np.argwhere(weights > 0)
    # Poison the first three weighted targets; their ids must occur nowhere
    # else among the weighted targets for "untouched" to be exact.
    poisoned = []
    for row, col in weighted:
      token_id = ids[row, col]
      if np.sum((ids == token_id) & (weights > 0)) == 1:
        poisoned.append((row, col))
      if len(poisoned) == 3:
        break
    self.assertLen(poisoned, 3)
    for (row, col), bad in zip(poisoned, (np.nan, np.inf, -np.inf)):
      losses[row, col] = bad
    recorder = _recorder(beta=0.9)
    table = recorder.update(ids, losses, weights).numpy()
    self.assertTrue(np.all(np.isfinite(table)))
    poisoned_ids = [ids[r, c] for r, c in poisoned]
    self.assertAllEqual(table[poisoned_ids], [10.0] * 3)
    clean = np.isfinite(losses)
    expected = _numpy_update(np.full_like(table, 10.0), ids, losses,
                             np.where(clean, weights, 0.0), 0.9)
    self.assertAllClose(table, expected)
    self.assertEqual(int(np.sum(token_importance.nonfinite_targets(
        losses, weights))), 3)

  @parameterized.parameters('dynamic', 'random')
  def test_cls_is_kept_when_k_is_below_the_always_kept_tokens(self,
                                                               strategy):
    special = real_data.vocab().special_ids
    rng = np.random.default_rng(2)
    # [CLS] anywhere in a row of [MASK]s and [SEP]s, and K = 1, the smallest
    # keep ratio allows.
    word_ids = rng.choice([special.mask, special.sep], size=(16, 32))
    cls_at = rng.integers(0, 32, size=16)
    word_ids[np.arange(16), cls_at] = special.cls
    recorder = _recorder(strategy=strategy)
    for seed in range(5):
      scores = recorder(tf.constant(word_ids, tf.int32),
                        seed=tf.constant([seed, 1]))
      kept = token_importance.select_kept_positions(
          scores, 1, seed=tf.constant([seed, 2])).numpy()
      self.assertAllEqual(kept[:, 0], cls_at)

  @parameterized.parameters(-0.1, 1.0)
  def test_rejects_bad_beta(self, beta):
    with self.assertRaisesRegex(ValueError, 'beta'):
      _recorder(beta=beta)

  def test_table_is_in_checkpoints(self):
    recorder = _recorder()
    features = real_data.batch()
    recorder.update(features['masked_lm_ids'],
                    np.ones_like(features['masked_lm_weights']),
                    features['masked_lm_weights'])
    path = tf.train.Checkpoint(recorder=recorder).write(
        self.create_tempdir().full_path + '/ckpt')
    restored = _recorder()
    tf.train.Checkpoint(recorder=restored).read(path).assert_consumed()
    self.assertAllEqual(restored.importance.numpy(),
                        recorder.importance.numpy())


class SelectKeptPositionsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(1, 7, 16, 32)
  def test_keeps_the_top_k_by_score(self, num_kept):
    word_ids = real_data.batch()['input_word_ids']
    scores = real_data.importance_like(word_ids, seed=num_kept)
    kept = token_importance.select_kept_positions(scores, num_kept).numpy()
    expected = np.sort(np.argsort(-scores.numpy(), axis=1)[:, :num_kept], 1)
    self.assertAllEqual(kept, expected)

  def test_ties_are_broken_at_random(self):
    scores = tf.fill([4, 32], 10.0)  # every id's initial score
    counts = np.zeros([32])
    draws = 100
    for _ in range(draws):
      kept = token_importance.select_kept_positions(scores, 16).numpy()
      for row in kept:
        counts[row] += 1
    share = counts / (4 * draws)
    # Position-order tie-breaking would give shares of exactly 1 and 0.
    self.assertAllInRange(share, 0.3, 0.7)

  def test_seeded_draws_repeat_and_differ_by_seed(self):
    scores = tf.fill([4, 32], 10.0)
    seed = token_importance.step_seed(3, tf.constant(5))
    first = token_importance.select_kept_positions(scores, 16, seed)
    again = token_importance.select_kept_positions(
        scores, 16, token_importance.step_seed(3, tf.constant(5)))
    self.assertAllEqual(first, again)
    for other in (token_importance.step_seed(4, tf.constant(5)),
                  token_importance.step_seed(3, tf.constant(6))):
      self.assertNotAllEqual(
          token_importance.select_kept_positions(scores, 16, other), first)

  def test_replicas_draw_independently(self):
    strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
    seeds = strategy.experimental_local_results(strategy.run(
        tf.function(lambda: token_importance.step_seed(3, tf.constant(5)))))
    self.assertLen(seeds, 2)
    self.assertNotAllEqual(seeds[0], seeds[1])
    # Replica 0 draws what a run without a strategy draws.
    self.assertAllEqual(seeds[0],
                        token_importance.step_seed(3, tf.constant(5)))


if __name__ == '__main__':
  tf.test.main()
