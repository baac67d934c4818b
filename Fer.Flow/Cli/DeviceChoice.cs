using TorchSharp;

namespace Fer.Flow.Cli;

public static class DeviceChoice
{
    /// <summary>Why a --device value is not one (null when it is): checked with the other options, before a run starts.</summary>
    public static string? Problem(string? choice) => choice is "auto" or "cpu" or "cuda" ? null
        : $"--device {Fer.Core.Storage.SafeText.Terminal(choice ?? "")}: expected auto, cpu or cuda";

    /// <summary>auto: CUDA when TorchSharp sees a GPU, else CPU.</summary>
    public static torch.Device Resolve(string choice) => choice switch
    {
        "cpu" => torch.CPU,
        "cuda" => torch.cuda.is_available()
            ? torch.CUDA
            : throw new Pipeline.FlowDefinitionException("--device cuda: TorchSharp sees no CUDA device (build with -p:TorchBackend=cuda on a machine with a GPU)"),
        "auto" => torch.cuda.is_available() ? torch.CUDA : torch.CPU,
        _ => throw new Pipeline.FlowDefinitionException($"--device {choice}: expected auto, cpu or cuda"),
    };
}
