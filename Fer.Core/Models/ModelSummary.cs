using System.Globalization;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Models;

/// <summary>One row of a Keras-style model summary.</summary>
public sealed record SummaryRow(string Name, string KerasType, string OutputShape, long Params);

/// <summary>
/// Keras' model.summary() for a <see cref="FerModel"/>: layer name and type, output shape (channels last, as
/// Keras prints it, though tensors are NCHW here) and parameter count. Batch-norm running statistics count
/// as non-trainable parameters, as Keras counts its moving mean and variance.
/// </summary>
public static class ModelSummary
{
    public static IReadOnlyList<SummaryRow> Rows(FerModel model)
    {
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var _ = torch.no_grad();
            using var scope = torch.NewDisposeScope();
            var device = model.parameters().FirstOrDefault()?.device ?? torch.CPU;
            var x = torch.zeros(1, 1, model.InputSide, model.InputSide, device: device);
            var rows = new List<SummaryRow>();
            foreach (var layer in model.Layers)
            {
                x = layer.Module.call(x);
                rows.Add(new SummaryRow(layer.Name, layer.KerasType, Shape(x), Trainable(layer) + NonTrainable(layer)));
            }
            return rows;
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    public static long TrainableParameters(FerModel model) => model.Layers.Sum(Trainable);
    public static long NonTrainableParameters(FerModel model) => model.Layers.Sum(NonTrainable);

    private static long Trainable(NamedLayer layer) => layer.Module.parameters().Where(p => p.requires_grad).Sum(p => p.numel());

    private static long NonTrainable(NamedLayer layer) =>
        layer.Module.parameters().Where(p => !p.requires_grad).Sum(p => p.numel())
        + layer.Module.named_buffers().Where(b => b.name.EndsWith("running_mean") || b.name.EndsWith("running_var")).Sum(b => b.buffer.numel());

    private static string Shape(Tensor x)
    {
        var s = x.shape;
        var dims = s.Length == 4 ? new[] { s[2], s[3], s[1] } : s.Skip(1).ToArray();
        return "(None, " + string.Join(", ", dims) + ")";
    }

    /// <summary>The table as Keras prints it.</summary>
    public static string Format(FerModel model)
    {
        var rows = Rows(model);
        int w1 = Math.Max(28, rows.Max(r => r.Name.Length + r.KerasType.Length + 3) + 2), w2 = 26;
        var line = new string('_', w1 + w2 + 12);
        var text = new StringBuilder();
        text.AppendLine(line);
        text.AppendLine($"{"Layer (type)".PadRight(w1)}{"Output Shape".PadRight(w2)}Param #");
        text.AppendLine(new string('=', line.Length));
        for (int i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            text.AppendLine($"{$"{r.Name} ({r.KerasType})".PadRight(w1)}{r.OutputShape.PadRight(w2)}{r.Params.ToString(CultureInfo.InvariantCulture)}");
            text.AppendLine(i == rows.Count - 1 ? new string('=', line.Length) : line);
        }
        long trainable = TrainableParameters(model), frozen = NonTrainableParameters(model);
        text.AppendLine($"Total params: {(trainable + frozen).ToString("N0", CultureInfo.InvariantCulture)}");
        text.AppendLine($"Trainable params: {trainable.ToString("N0", CultureInfo.InvariantCulture)}");
        text.AppendLine($"Non-trainable params: {frozen.ToString("N0", CultureInfo.InvariantCulture)}");
        text.AppendLine(line);
        return text.ToString();
    }
}
