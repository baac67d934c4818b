using Fer.Core.Ensemble;
using Fer.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Photos;

/// <summary>One trained member of an ensemble with its fitted weight.</summary>
public sealed record WeightedMember(string Name, FerModel Model, double Weight);

/// <summary>
/// Classifies face crops with a run's ensemble: each member's softmax (averaged with the mirrored crop's when the run
/// used flip TTA; <see cref="Predictor.Softmax"/>, as the predict stage), combined with the fitted weights
/// exactly as the predict stage combines them (<see cref="EnsembleWeights.Combine"/>).
/// </summary>
public sealed class EnsembleClassifier : IDisposable
{
    public EnsembleClassifier(IReadOnlyList<WeightedMember> members, IReadOnlyList<string> classNames, TestTimeAugmentation tta, Device device)
    {
        if (members.Count == 0) throw new ArgumentException("an ensemble needs at least one member", nameof(members));
        Side = members[0].Model.InputSide;
        foreach (var m in members)
        {
            if (m.Model.InputSide != Side) throw new ArgumentException($"member {m.Name} takes {m.Model.InputSide}-pixel images, {members[0].Name} {Side}");
            if (m.Model.NumClasses != classNames.Count) throw new ArgumentException($"member {m.Name} has {m.Model.NumClasses} classes, the run {classNames.Count}");
            if (!(m.Weight >= 0) || !double.IsFinite(m.Weight)) throw new ArgumentException($"member {m.Name} has weight {m.Weight}");
            m.Model.eval();
        }
        Members = members;
        ClassNames = classNames;
        Tta = tta;
        Device = device;
    }

    public IReadOnlyList<WeightedMember> Members { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public TestTimeAugmentation Tta { get; }
    public Device Device { get; }
    public int Side { get; }
    public int NumClasses => ClassNames.Count;

    /// <summary>Crops as a float tensor [N, 1, S, S] on 0..1 (the model normalises), on the CPU.</summary>
    public Tensor ToTensor(ReadOnlySpan<byte> crops, int count)
    {
        int p = Side * Side;
        if (crops.Length != count * p) throw new ArgumentException($"expected {count * p} bytes for {count} crops");
        var floats = new float[crops.Length];
        for (int i = 0; i < floats.Length; i++) floats[i] = crops[i] * (1f / 255f);
        return torch.tensor(floats, [count, 1, Side, Side]);
    }

    /// <summary>Ensemble probabilities [N*C] for <paramref name="count"/> crops of Side*Side bytes each; one forward per member.</summary>
    public float[] Classify(ReadOnlySpan<byte> crops, int count) => Classify(crops, count, out _);

    /// <summary>Also returns each member's probabilities (for explanation and tests).</summary>
    public float[] Classify(ReadOnlySpan<byte> crops, int count, out IReadOnlyList<float[]> perMember)
    {
        int c = NumClasses;
        var members = new List<float[]>(Members.Count);
        if (count == 0) { perMember = Members.Select(_ => Array.Empty<float>()).ToList(); return []; }
        using (var scope = torch.NewDisposeScope())
        using (torch.no_grad())
        using (TorchRuntime.CpuConvolutions(ConvolutionKernels.Default)) // the predict stage's kernels, whatever else runs
        {
            var x = ToTensor(crops, count).to(Device);
            foreach (var m in Members)
            {
                var p = Predictor.Softmax(m.Model, x, Tta);
                var result = new float[count * c];
                p.to(torch.CPU).contiguous().data<float>().CopyTo(result);
                members.Add(result);
            }
        }
        perMember = members;
        return EnsembleWeights.Combine(members, Members.Select(m => m.Weight).ToList(), c);
    }

    public void Dispose()
    {
        foreach (var m in Members) m.Model.Dispose();
    }
}
