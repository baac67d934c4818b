using Fer.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Explain;

/// <summary>One step of the cascade: the layers re-initialised so far (the last named), each method's maps on the
/// randomised model and their mean Spearman rank correlation with the trained model's maps.</summary>
public sealed record SanityStep(string Layer, int LayersRandomised, IReadOnlyDictionary<string, SaliencyResult> Maps,
    IReadOnlyDictionary<string, double> RankCorrelation);

/// <summary>The trained model's maps and the cascade's steps, top layer first.</summary>
public sealed record SanityResult(IReadOnlyDictionary<string, SaliencyResult> Trained, IReadOnlyList<SanityStep> Steps, int WeightLayers)
{
    /// <summary>Rank correlations at or above this after the last step mean a method's maps do not depend on the model.</summary>
    public const double IndependenceThreshold = 0.5;

    public double FinalCorrelation(string method) => Steps[^1].RankCorrelation[method];

    public bool DependsOnModel(string method) => FinalCorrelation(method) < IndependenceThreshold;
}

/// <summary>
/// The model-randomisation sanity check of Adebayo et al. 2018, cascading: the layers that hold weights are
/// re-initialised from the top (the classifier) down, one after another, and after each of
/// <c>checkpoints</c> evenly spaced steps (the last: every weight layer) each method explains the same images for
/// the same classes again. A method whose maps stay rank-correlated with the trained model's once the whole model is
/// random explains the image, not the model. The weights are restored afterwards (also on error).
/// </summary>
public static class SanityCheck
{
    public static SanityResult CascadingRandomisation(FerModel model, Tensor images, IReadOnlyList<AttributionMethod> methods,
        AttributionSettings settings, int checkpoints, long seed, IReadOnlyDictionary<string, SaliencyResult>? trained = null)
    {
        if (checkpoints < 1) throw new ArgumentOutOfRangeException(nameof(checkpoints), "checkpoints must be at least 1");
        var weightLayers = model.Layers.Where(l => WeightModules(l.Module).Any()).Reverse().ToList();
        if (weightLayers.Count == 0) throw new ArgumentException("the model has no layer with weights", nameof(model));
        checkpoints = Math.Min(checkpoints, weightLayers.Count);
        var trainedMaps = trained?.ToDictionary(p => p.Key, p => p.Value)
            ?? methods.ToDictionary(m => m.Name, m => m.Explain(model, images, settings));
        foreach (var m in methods)
            if (!trainedMaps.ContainsKey(m.Name)) trainedMaps[m.Name] = m.Explain(model, images, settings);

        var saved = new List<(string Name, Tensor Copy)>();
        using (torch.no_grad())
            foreach (var (name, tensor) in model.state_dict()) saved.Add((name, tensor.detach().clone()));
        var steps = new List<SanityStep>();
        try
        {
            var stops = Enumerable.Range(1, checkpoints).Select(k => (int)Math.Ceiling((double)k * weightLayers.Count / checkpoints)).ToHashSet();
            for (int i = 0; i < weightLayers.Count; i++)
            {
                Reinitialise(weightLayers[i].Module, new torch.Generator(ExplainSupport.Mix(seed, i, salt: 21), torch.CPU));
                if (!stops.Contains(i + 1)) continue;
                var maps = new Dictionary<string, SaliencyResult>();
                var correlation = new Dictionary<string, double>();
                foreach (var m in methods)
                {
                    var reference = trainedMaps[m.Name];
                    var random = m.Explain(model, images, settings, reference.TargetClasses);
                    maps[m.Name] = random;
                    correlation[m.Name] = MeanSpearman(reference, random);
                }
                steps.Add(new SanityStep(weightLayers[i].Name, i + 1, maps, correlation));
            }
        }
        finally
        {
            RestoreAndVerify(model, saved);
        }
        return new SanityResult(trainedMaps.Where(p => methods.Any(m => m.Name == p.Key)).ToDictionary(p => p.Key, p => p.Value), steps, weightLayers.Count);
    }

    /// <summary>
    /// Copies every saved parameter and buffer back into the model's state as it is now (by name, so a tensor a method
    /// swapped for another is restored too), then proves it: each must equal its copy bit for bit (NaN where the copy
    /// had NaN). A model left partly randomised would silently poison every later figure and export, so a tensor that
    /// cannot be restored (gone, or of another shape) is an error naming it, never a warning.
    /// </summary>
    private static void RestoreAndVerify(nn.Module model, List<(string Name, Tensor Copy)> saved)
    {
        var differing = new List<string>();
        using (torch.no_grad())
        {
            var now = model.state_dict();
            foreach (var (name, copy) in saved)
            {
                using var scope = torch.NewDisposeScope();
                bool same = now.TryGetValue(name, out var current) && current.shape.SequenceEqual(copy.shape);
                if (same)
                {
                    current!.copy_(copy.to(current.device));
                    same = current.eq(copy.to(current.device)).logical_or(current.isnan().logical_and(copy.isnan().to(current.device))).all().item<bool>();
                }
                if (!same) differing.Add(name);
            }
            foreach (var (_, copy) in saved) copy.Dispose();
        }
        if (differing.Count > 0)
            throw new InvalidOperationException($"the sanity check could not restore the model's weights ({string.Join(", ", differing)} differ from before it); do not use this model");
    }

    /// <summary>The convolutions and dense layers of a layer (itself included).</summary>
    private static IEnumerable<(Tensor Weight, Tensor? Bias)> WeightModules(nn.Module module)
    {
        var all = new List<nn.Module> { module };
        all.AddRange(module.named_modules().Select(p => p.module));
        foreach (var m in all.Distinct())
        {
            switch (m)
            {
                case TorchSharp.Modules.Conv2d conv: yield return (conv.weight!, conv.bias); break;
                case TorchSharp.Modules.Linear dense: yield return (dense.weight!, dense.bias); break;
            }
        }
    }

    /// <summary>libtorch's default scheme, uniform +-1/sqrt(fan_in) for weights and biases, from <paramref name="generator"/>.</summary>
    private static void Reinitialise(nn.Module module, torch.Generator generator)
    {
        using var noGrad = torch.no_grad();
        foreach (var (weight, bias) in WeightModules(module))
        {
            double bound = 1.0 / Math.Sqrt(weight.numel() / weight.shape[0]);
            using var values = torch.rand(weight.shape, dtype: weight.dtype, generator: generator).mul_(2 * bound).sub_(bound);
            weight.copy_(values.to(weight.device));
            if (bias is null) continue;
            using var biasValues = torch.rand(bias.shape, dtype: bias.dtype, generator: generator).mul_(2 * bound).sub_(bound);
            bias.copy_(biasValues.to(bias.device));
        }
    }

    /// <summary>The mean over images of the Spearman rank correlation between two maps of each image (ties get their
    /// mean rank; a constant map correlates 0 with anything).</summary>
    public static double MeanSpearman(SaliencyResult a, SaliencyResult b)
    {
        if (a.Count != b.Count || a.Side != b.Side) throw new ArgumentException("the two map sets differ in shape");
        double sum = 0;
        for (int i = 0; i < a.Count; i++) sum += Spearman(a.Map(i), b.Map(i));
        return sum / a.Count;
    }

    public static double Spearman(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        var rx = Ranks(x);
        var ry = Ranks(y);
        double mx = rx.Average(), my = ry.Average(), sxy = 0, sxx = 0, syy = 0;
        for (int k = 0; k < rx.Length; k++)
        {
            sxy += (rx[k] - mx) * (ry[k] - my);
            sxx += (rx[k] - mx) * (rx[k] - mx);
            syy += (ry[k] - my) * (ry[k] - my);
        }
        return sxx == 0 || syy == 0 ? 0 : sxy / Math.Sqrt(sxx * syy);
    }

    private static double[] Ranks(ReadOnlySpan<float> values)
    {
        var order = Enumerable.Range(0, values.Length).ToArray();
        var keys = values.ToArray();
        Array.Sort(keys, order);
        var ranks = new double[values.Length];
        for (int start = 0; start < keys.Length;)
        {
            int end = start + 1;
            while (end < keys.Length && keys[end] == keys[start]) end++;
            double rank = (start + end - 1) / 2.0;
            for (int k = start; k < end; k++) ranks[order[k]] = rank;
            start = end;
        }
        return ranks;
    }
}
