namespace Fer.Core.Ensemble;

public sealed record ClassMetrics(string Name, double Precision, double Recall, double F1, int Support);

/// <summary>Accuracy, confusion matrix (counts and row-normalised), per-class precision, recall and F1, best and worst class.</summary>
public sealed class ClassificationReport
{
    private ClassificationReport(IReadOnlyList<string> classNames, long[,] confusion)
    {
        ClassNames = classNames;
        Confusion = confusion;
        int c = classNames.Count;
        long total = 0, correct = 0;
        RowNormalized = new double[c, c];
        var perClass = new List<ClassMetrics>();
        for (int t = 0; t < c; t++)
        {
            long rowSum = 0, colSum = 0;
            for (int q = 0; q < c; q++) { rowSum += confusion[t, q]; colSum += confusion[q, t]; }
            for (int q = 0; q < c; q++) RowNormalized[t, q] = rowSum == 0 ? 0 : confusion[t, q] / (double)rowSum;
            total += rowSum;
            correct += confusion[t, t];
            double precision = colSum == 0 ? 0 : confusion[t, t] / (double)colSum;
            double recall = rowSum == 0 ? 0 : confusion[t, t] / (double)rowSum;
            double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
            perClass.Add(new ClassMetrics(classNames[t], precision, recall, f1, (int)rowSum));
        }
        Accuracy = total == 0 ? 0 : correct / (double)total;
        PerClass = perClass;
        var supported = perClass.Where(p => p.Support > 0).ToList();
        MacroF1 = supported.Count == 0 ? 0 : supported.Average(p => p.F1);
        // Ties go to the lower class index: MaxBy/MinBy keep the first.
        BestClass = supported.Count == 0 ? "" : supported.MaxBy(p => p.Recall)!.Name;
        WorstClass = supported.Count == 0 ? "" : supported.MinBy(p => p.Recall)!.Name;
    }

    public IReadOnlyList<string> ClassNames { get; }
    public double Accuracy { get; }
    /// <summary>Counts: [true class, predicted class].</summary>
    public long[,] Confusion { get; }
    /// <summary>Each true-class row divided by its support (recall on the diagonal).</summary>
    public double[,] RowNormalized { get; }
    public IReadOnlyList<ClassMetrics> PerClass { get; }
    public double MacroF1 { get; }
    /// <summary>The class with the highest recall (among classes with support).</summary>
    public string BestClass { get; }
    public string WorstClass { get; }

    public static ClassificationReport Compute(int[] labels, int[] predicted, IReadOnlyList<string> classNames)
    {
        if (labels.Length != predicted.Length) throw new ArgumentException($"{labels.Length} labels but {predicted.Length} predictions");
        int c = classNames.Count;
        var confusion = new long[c, c];
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] < 0 || labels[i] >= c) throw new ArgumentException($"label {labels[i]} of row {i} is out of range 0..{c - 1}");
            if (predicted[i] < 0 || predicted[i] >= c) throw new ArgumentException($"prediction {predicted[i]} of row {i} is out of range 0..{c - 1}");
            confusion[labels[i], predicted[i]]++;
        }
        return new ClassificationReport(classNames, confusion);
    }
}
