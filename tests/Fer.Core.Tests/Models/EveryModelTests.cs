using Fer.Core.Models;
using TorchSharp;

namespace Fer.Core.Tests.Models;

/// <summary>What every registered model must do: a model added to the registry is tested here without naming it.</summary>
public class EveryModelTests
{
    public static TheoryData<string> Registered => [.. ModelRegistry.Names];

    [Theory]
    [MemberData(nameof(Registered))]
    public void ForwardGivesLogitsPerClassAndLayerNamesAreUnique(string name)
    {
        using var model = ModelRegistry.Create(name, numClasses: 5);
        using var x = torch.rand(2, 1, 48, 48);
        model.eval();
        using var y = model.call(x);
        Assert.Equal(new long[] { 2, 5 }, y.shape);
        Assert.Equal(model.Layers.Count, model.Layers.Select(l => l.Name).Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(Registered))]
    public void InitializeDependsOnTheSeedAloneNotOnTheGlobalGenerator(string name)
    {
        using var a = ModelRegistry.Create(name);
        using var b = ModelRegistry.Create(name);
        using var c = ModelRegistry.Create(name);
        torch.manual_seed(1);
        a.Initialize(42);
        torch.manual_seed(2);
        using (torch.no_grad()) torch.rand(1000); // whatever used the global generator in between
        b.Initialize(42);
        c.Initialize(43);
        var pa = a.parameters().ToList(); var pb = b.parameters().ToList(); var pc = c.parameters().ToList();
        Assert.All(pa.Zip(pb), p => Assert.True(p.First.equal(p.Second).all().item<bool>()));
        Assert.Contains(pa.Zip(pc), p => !p.First.equal(p.Second).all().item<bool>());
    }

    /// <summary>The layers explanations use by default are the model's own and have the outputs their methods need.</summary>
    [Theory]
    [MemberData(nameof(Registered))]
    public void TheDefaultExplanationLayersFollowFromTheModel(string name)
    {
        var layout = ModelLayout.Of(ModelCatalog.BuiltIn, name, ModelCatalog.BuiltIn.Resolve(name, null))!;
        Assert.Equal(ModelRegistry.Create(name).Layers.Select(l => l.Name), layout.Layers.Select(l => l.Name));
        Assert.Equal([1L, 7L], layout.Layers[^1].Output);
        if (layout.CamLayer is { } cam) Assert.True(layout.Find(cam)!.Spatial, $"{name}: CAM layer {cam} has no feature maps");
        if (layout.FilterLayer is { } filters) Assert.True(layout.Find(filters)!.HasChannels);
        if (layout.OutputLayer is { } output) Assert.True(layout.Find(output)!.HasChannels);
        Assert.Equal(layout.Layers.Any(l => l.Spatial && l.KerasType == "Conv2D"), layout.CamLayer is not null);
    }

    /// <summary>
    /// Every layer is described in PyTorch's terms (what `fer export` writes for python/fer_export.py), and the
    /// described modules hold exactly the model's state: each state_dict key lies under a layer's op that has state.
    /// </summary>
    [Theory]
    [MemberData(nameof(Registered))]
    public void EveryLayerIsDescribedForPyTorchWithItsStateWhereTheStateDictHasIt(string name)
    {
        using var model = ModelRegistry.Create(name);
        var owners = new HashSet<string>(StringComparer.Ordinal);
        foreach (var layer in model.Layers)
        {
            var ops = LayerSpecs.Of(layer.Module);
            Assert.DoesNotContain(ops, op => op.Op == "unknown");
            foreach (var op in ops.Where(op => op.Module is not null)) owners.Add(op.Module == "" ? layer.Name : $"{layer.Name}.{op.Module}");
        }
        var keys = model.state_dict().Keys.Where(k => k is not ("input_mean" or "input_std")).ToList();
        Assert.NotEmpty(keys);
        Assert.All(keys, k => Assert.Contains(k[..k.LastIndexOf('.')], owners));
        Assert.All(owners, o => Assert.Contains(keys, k => k.StartsWith(o + ".", StringComparison.Ordinal)));
    }
}
