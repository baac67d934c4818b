using Fer.Core.Models;

namespace Fer.Core.Tests;

/// <summary>Code identity: taken from the IL of a type and of what it reaches in Fer; it differs when that code differs.</summary>
public class CodeIdentityTests
{
    [Fact]
    public void AModelsIdentityCoversItsLayersInitialisationAndDropoutAndIsStable()
    {
        var cnn = CodeIdentity.Of(typeof(SeedCnn));
        Assert.Matches("^[0-9a-f]{64}$", cnn);
        Assert.Equal(cnn, CodeIdentity.Of(typeof(SeedCnn)));
        Assert.NotEqual(cnn, CodeIdentity.Of(typeof(SeedDnn)));
        var covered = CodeIdentity.MethodsCovered(typeof(SeedCnn));
        Assert.Contains(covered, m => m.StartsWith("Fer.Core.Models.Conv2dRelu::", StringComparison.Ordinal) && m.Contains(" forward("));
        Assert.Contains(covered, m => m.StartsWith("Fer.Core.Models.SeededDropout::", StringComparison.Ordinal) && m.Contains(" forward("));
        Assert.Contains(covered, m => m.StartsWith("Fer.Core.Models.KerasInitialization::", StringComparison.Ordinal));
        Assert.DoesNotContain(covered, m => m.StartsWith("Fer.Core.Models.SeedDnn::", StringComparison.Ordinal)); // not reached from the CNN
    }

    /// <summary>Two registrations of a model that differ in one layer's width have different identities; the same code, the same one.</summary>
    [Fact]
    public void AModelWhoseLayerChangesGetsAnotherIdentity()
    {
        static ModelEntry Narrow() => new("test-vgg", ModelFamily.Convolutional, new Dictionary<string, double>(), (c, s, h) => new FerVgg(c, s, 0.25, 0.3));
        static ModelEntry Wide() => new("test-vgg", ModelFamily.Convolutional, new Dictionary<string, double>(), (c, s, h) => new FerVgg(c, s, 0.5, 0.3));
        Assert.Equal(Narrow().CodeIdentity, Narrow().CodeIdentity);
        Assert.NotEqual(Narrow().CodeIdentity, Wide().CodeIdentity);
        Assert.Equal(64, ModelCatalog.BuiltIn.Get("vgg-bn").CodeIdentity.Length);
        Assert.Equal("abc", (Narrow() with { SourceHash = "abc" }).CodeIdentity); // a script's model: the script's hash
        Assert.Equal(3, ModelRegistry.Names.Select(n => ModelCatalog.BuiltIn.Get(n).CodeIdentity).Distinct().Count());
    }
}
