"""Token dropping for efficient BERT pretraining, on the TF Model Garden."""

import os

# The Model Garden is built on Keras 2 (tf_keras): make tf.keras and
# tensorflow_hub resolve to it too. Must happen before TensorFlow is imported.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
