namespace Fer.Core.Data;

public enum SplitMode { Random, Usage }

/// <param name="ValidFraction">Share of training source images (random mode) held out for validation.</param>
/// <param name="Leaky">Split rows independently, so mirror twins straddle the split (the seed report's mistake).</param>
public sealed record SplitOptions(double ValidFraction = 0.1, int Seed = 0, bool Leaky = false, SplitMode Mode = SplitMode.Random);

public sealed record SplitResult(FaceSet Train, FaceSet Valid, FaceSet Test);

/// <summary>Train / validation / test split, stratified by class and seeded.</summary>
public static class FaceSplitter
{
    public static SplitResult Split(FaceSet all, SplitOptions options)
    {
        var test = all.Where(i => all.Usage[i] is FaceUsage.Test or FaceUsage.PrivateTest
                                  || (options.Mode == SplitMode.Random && all.Usage[i] == FaceUsage.PublicTest));
        if (options.Mode == SplitMode.Usage)
            return new SplitResult(all.Where(i => all.Usage[i] == FaceUsage.Training), all.Where(i => all.Usage[i] == FaceUsage.PublicTest), test);

        if (!(options.ValidFraction > 0 && options.ValidFraction < 1))
            throw new ArgumentException($"valid_fraction must be between 0 and 1, got {options.ValidFraction}");
        var pool = Enumerable.Range(0, all.Count).Where(i => all.Usage[i] == FaceUsage.Training).ToArray();
        if (pool.Length == 0) throw new ArgumentException("there are no training rows to split");
        if (pool.Any(i => all.Labels[i] == FaceSet.Unlabeled)) throw new ArgumentException("training rows must be labelled to split them");

        var random = new Random(options.Seed);
        var validRows = new HashSet<int>();
        if (options.Leaky)
        {
            // Rows, twins included, are drawn independently per class: a twin can land on the other side.
            foreach (var cls in pool.GroupBy(i => all.Labels[i]).OrderBy(g => g.Key))
            {
                var rows = cls.OrderBy(i => all.Ids[i]).ThenBy(i => all.Flipped[i]).ToArray();
                random.Shuffle(rows);
                validRows.UnionWith(rows.Take((int)Math.Round(rows.Length * options.ValidFraction)));
            }
            return new SplitResult(all.Select(pool.Where(i => !validRows.Contains(i)).ToArray()), all.Select(pool.Where(validRows.Contains).ToArray()), test);
        }

        // Leak-free: whole groups (an original and its twins) go to one side; validation keeps only originals.
        var groups = pool.GroupBy(i => all.SourceIds[i]).Select(g => g.ToArray()).ToList();
        foreach (var cls in groups.GroupBy(g => all.Labels[g[0]]).OrderBy(c => c.Key))
        {
            var ordered = cls.OrderBy(g => all.SourceIds[g[0]]).ToArray();
            random.Shuffle(ordered);
            foreach (var g in ordered.Take((int)Math.Round(ordered.Length * options.ValidFraction))) validRows.UnionWith(g);
        }
        var train = pool.Where(i => !validRows.Contains(i)).ToArray();
        var valid = pool.Where(i => validRows.Contains(i) && !all.Flipped[i]).ToArray();
        return new SplitResult(all.Select(train), all.Select(valid), test);
    }
}
