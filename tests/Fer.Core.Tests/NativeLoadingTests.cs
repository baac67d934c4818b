using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests;

public class NativeLoadingTests
{
    [Fact]
    public void TorchSharpLoadsAndComputesInTheTestHost()
    {
        using var a = tensor(new float[] { 1, 2, 3 });
        using var b = a.mul(2).sum();
        Assert.Equal(12f, b.item<float>());
        Assert.False(string.IsNullOrEmpty(torch.__version__));
    }
}
