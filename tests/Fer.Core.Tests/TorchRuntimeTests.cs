using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests;

public class TorchRuntimeTests
{
    /// <summary>
    /// The shapes where libtorch 2.10's oneDNN convolutions gave wrong input gradients (6 images of 16x16, 1->6 and
    /// 4->8 channels) and a seed-CNN-like one: inside the scope every batched gradient equals a float64 reference.
    /// </summary>
    [Theory]
    [InlineData(1, 6, 16, 6, 3, 1)]
    [InlineData(4, 8, 16, 6, 3, 1)]
    [InlineData(1, 6, 16, 6, 3, 2)]
    [InlineData(64, 64, 12, 16, 3, 2)]
    public void InputGradientsOfBatchedConvolutionsAreExactInsideTheScope(int inChannels, int outChannels, int side,
        int batch, int kernel, int threads)
    {
        int before = torch.get_num_threads();
        torch.set_num_threads(threads);
        try
        {
            using var exact = TorchRuntime.NativeCpuConvolutions();
            for (int trial = 0; trial < 10; trial++)
            {
                using var scope = torch.NewDisposeScope();
                var generator = new torch.Generator((ulong)(trial + 1), torch.CPU);
                var weight = torch.randn([outChannels, inChannels, kernel, kernel], generator: generator) * 0.3;
                var bias = torch.randn([outChannels], generator: generator) * 0.1;
                var images = torch.rand([batch, inChannels, side, side], generator: generator);
                var upstream = torch.rand([batch, outChannels, side, side], generator: generator);
                Tensor InputGradient(ScalarType dtype)
                {
                    var leaf = images.to(dtype).requires_grad_(true);
                    var output = nn.functional.conv2d(leaf, weight.to(dtype), bias.to(dtype), padding: [kernel / 2, kernel / 2]);
                    return torch.autograd.grad([(nn.functional.relu(output) * upstream.to(dtype)).sum()], [leaf])[0].to(float64);
                }
                var reference = InputGradient(float64);
                double error = (InputGradient(float32) - reference).abs().max().item<double>() / reference.abs().max().item<double>();
                Assert.True(error < 1e-5, $"trial {trial}: relative error {error:g3}");
            }
        }
        finally
        {
            torch.set_num_threads(before);
        }
    }

    [Fact]
    public void ScopesNestAndGiveOneDnnBackWhenTheLastCloses()
    {
        // Read inside default scopes: tests on other threads may hold native ones meanwhile, and those scopes wait for them.
        bool? OneDnnWithNoNativeScopeOpen() { using (TorchRuntime.CpuConvolutions(ConvolutionKernels.Default)) return TorchRuntime.OneDnnEnabled; }
        Assert.True(OneDnnWithNoNativeScopeOpen(), "libtorch 2.10 CPU routes convolutions to oneDNN by default, and Fer can read the switch");
        var outer = TorchRuntime.NativeCpuConvolutions();
        Assert.False(TorchRuntime.OneDnnEnabled);
        var inner = TorchRuntime.NativeCpuConvolutions();
        inner.Dispose();
        inner.Dispose(); // a second dispose changes nothing
        Assert.False(TorchRuntime.OneDnnEnabled);
        outer.Dispose();
        Assert.True(OneDnnWithNoNativeScopeOpen());
    }

    /// <summary>
    /// The two kinds of scopes exclude each other across threads (a default scope opened while a native one is open
    /// waits until it closes, and then sees oneDNN on); inside a native scope a default one keeps the native kernels;
    /// a native scope asked for inside a default one is refused, since it would compute oneDNN's input gradients.
    /// </summary>
    [Fact]
    public async Task KernelScopesOfTheTwoKindsExcludeEachOtherAndNestOnlyTowardsExact()
    {
        bool? seenInside = null;
        Task waiter;
        using (var native = TorchRuntime.NativeCpuConvolutions())
        {
            // Another logical flow: one started from inside a scope would inherit it, as work of the same computation.
            using (ExecutionContext.SuppressFlow())
                waiter = Task.Run(() =>
                {
                    using var fast = TorchRuntime.CpuConvolutions(ConvolutionKernels.Default);
                    seenInside = TorchRuntime.OneDnnEnabled;
                });
            await Task.Delay(300);
            Assert.False(waiter.IsCompleted, "a default scope opened while a native one was open");
            Assert.False(TorchRuntime.OneDnnEnabled);
        }
        await waiter.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(seenInside);

        await Task.Run(() =>
        {
            using (TorchRuntime.NativeCpuConvolutions())
            using (TorchRuntime.CpuConvolutions(ConvolutionKernels.Default))
                Assert.False(TorchRuntime.OneDnnEnabled); // nested: the outer, exact kind stays
            using (TorchRuntime.CpuConvolutions(ConvolutionKernels.Default))
                Assert.Throws<InvalidOperationException>(() => TorchRuntime.NativeCpuConvolutions());
        });
    }
}
