using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Fer.Core.Models;

/// <summary>
/// One operation of a layer as PyTorch builds it: its kind (conv2d, linear, batch_norm, relu, ...), its arguments, and
/// where its parameters live: "" for the layer itself, a child's name ("conv" of conv2d_1.conv.weight), null for an
/// operation without state. <c>fer export</c> writes these into model.json so python/fer_export.py rebuilds any model,
/// a flow script's included, without a PyTorch class written for it.
/// </summary>
public sealed record LayerOp(string Op, string? Module, IReadOnlyDictionary<string, object> Args);

/// <summary>A module of Fer's that is several PyTorch operations (a convolution and its ReLU) describes them itself.</summary>
public interface IDescribedLayer
{
    IReadOnlyList<LayerOp> Ops { get; }
}

/// <summary>What each layer of a model is in PyTorch's terms (see <see cref="LayerOp"/>).</summary>
public static class LayerSpecs
{
    /// <summary>The operations of one layer's module, in order; a module Fer cannot describe is one "unknown" op naming its type.</summary>
    public static IReadOnlyList<LayerOp> Of(nn.Module module) => module switch
    {
        IDescribedLayer described => described.Ops,
        _ => [Describe(module, "")],
    };

    /// <summary>One TorchSharp module as one operation whose parameters live at <paramref name="at"/>.</summary>
    public static LayerOp Describe(nn.Module module, string at) => module switch
    {
        Conv2d c => new("conv2d", at, new Dictionary<string, object>
        {
            ["in_channels"] = c.in_channels, ["out_channels"] = c.out_channels, ["kernel_size"] = c.kernel_size, ["stride"] = c.stride,
            ["padding"] = (object?)c.padding ?? (c.padding_type == TorchSharp.Padding.Same ? "same" : "valid"), ["dilation"] = c.dilation, ["groups"] = c.groups, ["bias"] = c.bias is not null,
        }),
        Linear l => new("linear", at, new Dictionary<string, object> { ["in_features"] = l.in_features, ["out_features"] = l.out_features, ["bias"] = l.bias is not null }),
        BatchNorm b => new("batch_norm", at, new Dictionary<string, object>
        {
            ["dims"] = b is BatchNorm1d ? 1 : b is BatchNorm2d ? 2 : 3, ["num_features"] = b.num_features, ["eps"] = b.eps,
            ["momentum"] = (object?)b.momentum ?? "none", ["affine"] = b.affine, ["track_running_stats"] = b.track_running_stats,
        }),
        MaxPool2d p => new("max_pool2d", null, new Dictionary<string, object>
        {
            ["kernel_size"] = p.kernel_size, ["stride"] = p.stride ?? p.kernel_size, ["padding"] = p.padding ?? [0L, 0L], ["dilation"] = p.dilation ?? [1L, 1L], ["ceil_mode"] = p.ceil_mode,
        }),
        AvgPool2d p => new("avg_pool2d", null, new Dictionary<string, object>
        {
            ["kernel_size"] = p.kernel_size, ["stride"] = p.stride ?? p.kernel_size, ["padding"] = p.padding ?? [0L, 0L], ["ceil_mode"] = p.ceil_mode,
            ["count_include_pad"] = p.count_include_pad, ["divisor_override"] = (object?)p.divisor_override ?? "none",
        }),
        ZeroPad2d z => new("zero_pad2d", null, new Dictionary<string, object> { ["padding"] = z.padding }),
        ReLU => Op("relu"),
        Identity => Op("identity"),
        Flatten f => new("flatten", null, new Dictionary<string, object> { ["start_dim"] = f.start_dim, ["end_dim"] = f.end_dim }),
        Dropout d => new("dropout", null, new Dictionary<string, object> { ["p"] = d.p }),
        SeededDropout d => new("dropout", null, new Dictionary<string, object> { ["p"] = d.P }),
        _ => new("unknown", at, new Dictionary<string, object> { ["type"] = module.GetType().FullName ?? module.GetType().Name }),
    };

    /// <summary>An operation without arguments or state.</summary>
    public static LayerOp Op(string op) => new(op, null, new Dictionary<string, object>());
}
