namespace Fer.Core.Ensemble;

/// <summary>A fitted linear combination of members' probabilities, with its baselines.</summary>
public sealed record EnsembleFit(double[] Weights, double ValidNll, double ValidAccuracy, double[] EqualWeights, double EqualWeightNll,
    double EqualWeightAccuracy, int BestMember, double BestMemberAccuracy, bool FellBackToBestMember, string Explanation);

/// <summary>
/// Fits ensemble weights instead of guessing them: non-negative, summing to 1, minimising the validation
/// negative log-likelihood of the weighted average of the members' probabilities (a convex problem, solved by
/// exponentiated-gradient descent on the simplex). The fitted ensemble is never less accurate on validation
/// than the best single member: if it would be, the fit falls back to that member and says so.
/// </summary>
public static class EnsembleWeights
{
    private const double Epsilon = 1e-12;

    public static EnsembleFit Fit(IReadOnlyList<float[]> memberProbabilities, int[] labels, int numClasses)
    {
        int m = memberProbabilities.Count;
        Validate(memberProbabilities, labels, numClasses);
        int n = labels.Length;
        // p[k][i]: member k's probability of row i's true class; everything the NLL needs.
        var p = new double[m][];
        for (int k = 0; k < m; k++)
        {
            p[k] = new double[n];
            for (int i = 0; i < n; i++) p[k][i] = memberProbabilities[k][i * numClasses + labels[i]];
        }
        var accuracies = memberProbabilities.Select(probs => Accuracy(probs, labels, numClasses)).ToArray();
        int best = Array.IndexOf(accuracies, accuracies.Max());
        var equal = Enumerable.Repeat(1.0 / m, m).ToArray();
        double equalNll = Nll(p, equal), equalAccuracy = Accuracy(Combine(memberProbabilities, equal, numClasses), labels, numClasses);

        var w = (double[])equal.Clone();
        if (m > 1 && n > 0)
        {
            double step = 1.0, current = Nll(p, w);
            for (int iteration = 0; iteration < 5000; iteration++)
            {
                var gradient = Gradient(p, w);
                // Exponentiated gradient with backtracking: the multiplicative update stays on the simplex.
                double[] candidate;
                double value;
                while (true)
                {
                    candidate = new double[m];
                    double largest = gradient.Max(g => -step * g); // subtracted so that Exp cannot overflow
                    for (int k = 0; k < m; k++) candidate[k] = w[k] * Math.Exp(-step * gradient[k] - largest);
                    double sum = candidate.Sum();
                    for (int k = 0; k < m; k++) candidate[k] /= sum;
                    value = Nll(p, candidate);
                    if (value <= current + 1e-15 || step < 1e-12) break;
                    step *= 0.5;
                }
                double change = w.Zip(candidate, (a, b) => Math.Abs(a - b)).Max();
                w = candidate;
                bool converged = current - value < 1e-13 && change < 1e-10;
                current = value;
                if (converged) break;
                step = Math.Min(step * 2, 1e4);
            }
        }

        var fitted = Combine(memberProbabilities, w, numClasses);
        double fittedAccuracy = Accuracy(fitted, labels, numClasses), fittedNll = Nll(p, w);
        if (fittedAccuracy < accuracies[best])
        {
            var oneHot = new double[m];
            oneHot[best] = 1;
            return new EnsembleFit(oneHot, Nll(p, oneHot), accuracies[best], equal, equalNll, equalAccuracy, best, accuracies[best], true,
                $"the NLL-optimal weights ({string.Join(", ", w.Select(x => x.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)))}) " +
                $"reach validation accuracy {fittedAccuracy:0.0000}, below the best member's {accuracies[best]:0.0000}, so the best member is used alone");
        }
        return new EnsembleFit(w, fittedNll, fittedAccuracy, equal, equalNll, equalAccuracy, best, accuracies[best], false,
            m == 1 ? "a single member" : "weights fitted by minimising the validation negative log-likelihood");
    }

    public static float[] Combine(IReadOnlyList<float[]> memberProbabilities, IReadOnlyList<double> weights, int numClasses)
    {
        if (memberProbabilities.Count == 0) throw new ArgumentException("no members");
        if (weights.Count != memberProbabilities.Count) throw new ArgumentException($"{weights.Count} weights for {memberProbabilities.Count} members");
        var result = new float[memberProbabilities[0].Length];
        for (int k = 0; k < memberProbabilities.Count; k++)
        {
            var probs = memberProbabilities[k];
            if (probs.Length != result.Length) throw new ArgumentException($"member {k} has {probs.Length} values, member 0 has {result.Length}");
            float wk = (float)weights[k];
            for (int i = 0; i < result.Length; i++) result[i] += wk * probs[i];
        }
        return result;
    }

    public static int[] ArgMax(float[] probabilities, int numClasses)
    {
        if (numClasses <= 0 || probabilities.Length % numClasses != 0)
            throw new ArgumentException($"{probabilities.Length} values are not rows of {numClasses} classes");
        var result = new int[probabilities.Length / numClasses];
        for (int i = 0; i < result.Length; i++)
        {
            int best = 0;
            for (int c = 1; c < numClasses; c++)
                if (probabilities[i * numClasses + c] > probabilities[i * numClasses + best]) best = c;
            result[i] = best;
        }
        return result;
    }

    private static double Accuracy(float[] probabilities, int[] labels, int numClasses)
    {
        if (labels.Length == 0) return 0;
        var predicted = ArgMax(probabilities, numClasses);
        return predicted.Zip(labels).Count(x => x.First == x.Second) / (double)labels.Length;
    }

    private static double Nll(double[][] p, double[] w)
    {
        int n = p[0].Length;
        if (n == 0) return 0;
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            double mix = 0;
            for (int k = 0; k < w.Length; k++) mix += w[k] * p[k][i];
            total -= Math.Log(mix + Epsilon);
        }
        return total / n;
    }

    private static double[] Gradient(double[][] p, double[] w)
    {
        int n = p[0].Length;
        var g = new double[w.Length];
        for (int i = 0; i < n; i++)
        {
            double mix = Epsilon;
            for (int k = 0; k < w.Length; k++) mix += w[k] * p[k][i];
            for (int k = 0; k < w.Length; k++) g[k] -= p[k][i] / mix / n;
        }
        return g;
    }

    private static void Validate(IReadOnlyList<float[]> members, int[] labels, int numClasses)
    {
        if (members.Count == 0) throw new ArgumentException("no members to combine");
        if (numClasses <= 0) throw new ArgumentException("numClasses must be positive");
        for (int k = 0; k < members.Count; k++)
            if (members[k].Length != labels.Length * numClasses)
                throw new ArgumentException($"member {k} has {members[k].Length} probabilities, expected {labels.Length} rows x {numClasses} classes");
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] < 0 || labels[i] >= numClasses)
                throw new ArgumentException($"label {labels[i]} of row {i} is out of range 0..{numClasses - 1}");
    }
}
