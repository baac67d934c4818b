namespace Fer.Core.Ensemble;

/// <summary>How the members are combined: the fitted weights, equal weights, or the best member alone.</summary>
public enum EnsembleChoice { Fitted, Equal, BestMember }

/// <summary>A combination's accuracy and negative log-likelihood on rows it was not fitted on (pooled over the folds).</summary>
public sealed record HeldOutScore(double Accuracy, double Nll);

/// <summary>The combination chosen, its weights and validation scores, and the baselines it was chosen over.</summary>
public sealed record EnsembleFit
{
    public required double[] Weights { get; init; }
    public required EnsembleChoice Choice { get; init; }
    public required double ValidNll { get; init; }
    public required double ValidAccuracy { get; init; }
    /// <summary>The NLL-optimal weights on the whole validation set (used when <see cref="Choice"/> is Fitted).</summary>
    public required double[] FittedWeights { get; init; }
    public required double[] EqualWeights { get; init; }
    public required double EqualWeightNll { get; init; }
    public required double EqualWeightAccuracy { get; init; }
    public required int BestMember { get; init; }
    public required double BestMemberAccuracy { get; init; }
    /// <summary>Each candidate's held-out score over <see cref="Folds"/> folds (empty when the set was too small to fold).</summary>
    public IReadOnlyDictionary<EnsembleChoice, HeldOutScore> HeldOut { get; init; } = new Dictionary<EnsembleChoice, HeldOutScore>();
    public int Folds { get; init; }
    public required string Explanation { get; init; }
    public bool FellBackToBestMember => Choice == EnsembleChoice.BestMember;
}

/// <summary>
/// Fits ensemble weights instead of guessing them: non-negative, summing to 1, minimising the validation negative
/// log-likelihood of the weighted average of the members' probabilities (a convex problem, solved by exponentiated-
/// gradient descent on the simplex). Fitted on a small validation set, such weights can do worse than equal weights on
/// new images (the quickstart's fit gave the CNN all the weight: 0.9703 against 0.9777 for equal weights), so the
/// combination is chosen by cross-validation: on K folds of the validation set (K up to 5, each at least 10 rows),
/// the weights are fitted on the other folds and scored on the held-out one, beside equal weights and the best member
/// of the other folds. The highest pooled held-out accuracy wins (then the lower held-out NLL; on a tie, equal weights,
/// the choice that fits nothing); its weights are then taken on the whole set. Too small a set to fold keeps the fit
/// unless it is less accurate than the best member.
/// </summary>
public static class EnsembleWeights
{
    private const double Epsilon = 1e-12;
    public const int MaxFolds = 5, MinFoldRows = 10;

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
        var all = Enumerable.Range(0, n).ToArray();
        var accuracies = memberProbabilities.Select(probs => Accuracy(probs, labels, numClasses, all)).ToArray();
        int best = Array.IndexOf(accuracies, accuracies.Max());
        var equal = Enumerable.Repeat(1.0 / m, m).ToArray();
        var fitted = FitSimplex(p, all);
        var oneHot = OneHot(m, best);
        var weights = new Dictionary<EnsembleChoice, double[]> { [EnsembleChoice.Fitted] = fitted, [EnsembleChoice.Equal] = equal, [EnsembleChoice.BestMember] = oneHot };
        double Acc(double[] w) => Accuracy(Combine(memberProbabilities, w, numClasses), labels, numClasses, all);

        int folds = Math.Min(MaxFolds, n / MinFoldRows);
        EnsembleChoice choice;
        string explanation;
        var heldOut = new Dictionary<EnsembleChoice, HeldOutScore>();
        if (m == 1)
        {
            (choice, explanation, folds) = (EnsembleChoice.Fitted, "a single member", 0);
        }
        else if (folds < 2)
        {
            folds = 0;
            choice = Acc(fitted) < accuracies[best] ? EnsembleChoice.BestMember : EnsembleChoice.Fitted;
            explanation = choice == EnsembleChoice.Fitted
                ? $"weights fitted by minimising the validation negative log-likelihood ({n} rows: too few to cross-validate)"
                : $"the NLL-optimal weights ({Text(fitted)}) reach validation accuracy {Acc(fitted):0.0000}, below the best member's {accuracies[best]:0.0000}, so the best member is used alone";
        }
        else
        {
            heldOut = CrossValidate(memberProbabilities, p, labels, numClasses, folds);
            choice = heldOut.OrderByDescending(c => c.Value.Accuracy).ThenBy(c => c.Value.Nll)
                .ThenBy(c => c.Key == EnsembleChoice.Equal ? 0 : c.Key == EnsembleChoice.BestMember ? 1 : 2).First().Key;
            string Score(EnsembleChoice c) => $"{heldOut[c].Accuracy:0.0000} (NLL {heldOut[c].Nll:0.0000})";
            explanation = $"held-out accuracy over {folds} folds of the validation set: fitted weights {Score(EnsembleChoice.Fitted)}, " +
                          $"equal weights {Score(EnsembleChoice.Equal)}, best member {Score(EnsembleChoice.BestMember)}; " +
                          (choice switch
                          {
                              EnsembleChoice.Fitted => $"the fitted weights ({Text(fitted)}) are used",
                              EnsembleChoice.Equal => $"the fit ({Text(fitted)}) does not beat equal weights on held-out rows, so equal weights are used",
                              _ => "the best member alone is used",
                          });
        }
        var chosen = weights[choice];
        return new EnsembleFit
        {
            Weights = chosen, Choice = choice, ValidNll = Nll(p, chosen, all), ValidAccuracy = Acc(chosen), FittedWeights = fitted,
            EqualWeights = equal, EqualWeightNll = Nll(p, equal, all), EqualWeightAccuracy = Acc(equal),
            BestMember = best, BestMemberAccuracy = accuracies[best], HeldOut = heldOut, Folds = folds, Explanation = explanation,
        };
    }

    /// <summary>Each candidate scored on every fold with what was chosen on the other folds (rows i with i mod K = f).</summary>
    private static Dictionary<EnsembleChoice, HeldOutScore> CrossValidate(IReadOnlyList<float[]> probs, double[][] p, int[] labels, int numClasses, int folds)
    {
        int n = labels.Length, m = probs.Count;
        var correct = new Dictionary<EnsembleChoice, int> { [EnsembleChoice.Fitted] = 0, [EnsembleChoice.Equal] = 0, [EnsembleChoice.BestMember] = 0 };
        var nll = new Dictionary<EnsembleChoice, double> { [EnsembleChoice.Fitted] = 0, [EnsembleChoice.Equal] = 0, [EnsembleChoice.BestMember] = 0 };
        var equal = Enumerable.Repeat(1.0 / m, m).ToArray();
        for (int f = 0; f < folds; f++)
        {
            var train = Enumerable.Range(0, n).Where(i => i % folds != f).ToArray();
            var test = Enumerable.Range(0, n).Where(i => i % folds == f).ToArray();
            var trainAccuracies = probs.Select(pr => Accuracy(pr, labels, numClasses, train)).ToArray();
            var candidates = new Dictionary<EnsembleChoice, double[]>
            {
                [EnsembleChoice.Fitted] = FitSimplex(p, train),
                [EnsembleChoice.Equal] = equal,
                [EnsembleChoice.BestMember] = OneHot(m, Array.IndexOf(trainAccuracies, trainAccuracies.Max())),
            };
            foreach (var (choice, w) in candidates)
            {
                var mixed = Combine(probs, w, numClasses);
                correct[choice] += (int)Math.Round(Accuracy(mixed, labels, numClasses, test) * test.Length);
                nll[choice] += Nll(p, w, test) * test.Length;
            }
        }
        return correct.Keys.ToDictionary(c => c, c => new HeldOutScore(correct[c] / (double)n, nll[c] / n));
    }

    /// <summary>The NLL-optimal weights on the simplex over these rows.</summary>
    private static double[] FitSimplex(double[][] p, int[] rows)
    {
        int m = p.Length;
        var w = Enumerable.Repeat(1.0 / m, m).ToArray();
        if (m == 1 || rows.Length == 0) return w;
        double step = 1.0, current = Nll(p, w, rows);
        for (int iteration = 0; iteration < 5000; iteration++)
        {
            var gradient = Gradient(p, w, rows);
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
                value = Nll(p, candidate, rows);
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
        return w;
    }

    private static double[] OneHot(int m, int k)
    {
        var w = new double[m];
        w[k] = 1;
        return w;
    }

    private static string Text(double[] w) => string.Join(", ", w.Select(x => x.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)));

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

    private static double Accuracy(float[] probabilities, int[] labels, int numClasses, int[] rows)
    {
        if (rows.Length == 0) return 0;
        int right = 0;
        foreach (var i in rows)
        {
            int bestClass = 0;
            for (int c = 1; c < numClasses; c++)
                if (probabilities[i * numClasses + c] > probabilities[i * numClasses + bestClass]) bestClass = c;
            if (bestClass == labels[i]) right++;
        }
        return right / (double)rows.Length;
    }

    private static double Nll(double[][] p, double[] w, int[] rows)
    {
        if (rows.Length == 0) return 0;
        double total = 0;
        foreach (var i in rows)
        {
            double mix = 0;
            for (int k = 0; k < w.Length; k++) mix += w[k] * p[k][i];
            total -= Math.Log(mix + Epsilon);
        }
        return total / rows.Length;
    }

    private static double[] Gradient(double[][] p, double[] w, int[] rows)
    {
        var g = new double[w.Length];
        foreach (var i in rows)
        {
            double mix = Epsilon;
            for (int k = 0; k < w.Length; k++) mix += w[k] * p[k][i];
            for (int k = 0; k < w.Length; k++) g[k] -= p[k][i] / mix / rows.Length;
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
