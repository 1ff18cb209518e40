/** The manifest's outputs.scores.activation: model scores → the probabilities thresholds apply to. Pure. */
export type Activation = 'sigmoid' | 'softmax' | 'none';

/** One item's scores (K findings) through the activation; float64 throughout. */
export function activate(scores: readonly number[], activation: Activation): number[] {
  switch (activation) {
    case 'none':
      return [...scores];
    case 'sigmoid':
      // Written for both signs so that a large |logit| neither overflows nor loses the small end.
      return scores.map((x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))));
    case 'softmax': {
      const max = Math.max(...scores);
      const e = scores.map((x) => Math.exp(x - max));
      const sum = e.reduce((a, b) => a + b, 0);
      return e.map((x) => x / sum);
    }
    default: {
      const never: never = activation;
      throw new Error(`unknown activation ${String(never)}`);
    }
  }
}
