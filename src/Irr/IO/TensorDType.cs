using Irr.Tensors;

namespace Irr.IO;

/// <summary>
/// Element types a safetensors header may name (the format's full list). IRR computes with
/// <see cref="F32"/>, <see cref="F16"/> and <see cref="BF16"/>; files holding others open and can be
/// inspected and copied byte for byte, but reading such a tensor as float32 is an error naming it.
/// </summary>
public enum TensorDType
{
    /// <summary>bool, 1 byte.</summary>
    BOOL,
    /// <summary>uint8.</summary>
    U8,
    /// <summary>int8.</summary>
    I8,
    /// <summary>float8 e4m3.</summary>
    F8_E4M3,
    /// <summary>float8 e5m2.</summary>
    F8_E5M2,
    /// <summary>int16.</summary>
    I16,
    /// <summary>uint16.</summary>
    U16,
    /// <summary>IEEE binary16.</summary>
    F16,
    /// <summary>bfloat16.</summary>
    BF16,
    /// <summary>int32.</summary>
    I32,
    /// <summary>uint32.</summary>
    U32,
    /// <summary>IEEE binary32.</summary>
    F32,
    /// <summary>IEEE binary64.</summary>
    F64,
    /// <summary>int64.</summary>
    I64,
    /// <summary>uint64.</summary>
    U64,
}

/// <summary>Sizes, names and conversions of <see cref="TensorDType"/>.</summary>
public static class TensorDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int SizeOf(this TensorDType type) => type switch
    {
        TensorDType.BOOL or TensorDType.U8 or TensorDType.I8 or TensorDType.F8_E4M3 or TensorDType.F8_E5M2 => 1,
        TensorDType.I16 or TensorDType.U16 or TensorDType.F16 or TensorDType.BF16 => 2,
        TensorDType.I32 or TensorDType.U32 or TensorDType.F32 => 4,
        _ => 8,
    };

    /// <summary>Parses the safetensors name ("BF16"); false for anything else.</summary>
    public static bool TryParse(string name, out TensorDType type) =>
        Enum.TryParse(name, ignoreCase: false, out type) && Enum.IsDefined(type) && name == type.ToString();

    /// <summary>Whether IRR can compute with it (convert to and from float32).</summary>
    public static bool IsFloatingSupported(this TensorDType type) => type is TensorDType.F32 or TensorDType.F16 or TensorDType.BF16;

    /// <summary>The conversion type for a supported dtype.</summary>
    public static DType ToDType(this TensorDType type) => type switch
    {
        TensorDType.F32 => DType.F32,
        TensorDType.F16 => DType.F16,
        TensorDType.BF16 => DType.BF16,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "IRR computes only with F32, F16 and BF16."),
    };

    /// <summary>
    /// An output storage type as the model-writing commands take it (<c>--dtype</c>): keep (null: each tensor keeps
    /// the fine-tuned model's type), bf16, f16 or f32 (and the aliases bfloat16, fp16, float16, fp32, float32).
    /// </summary>
    /// <exception cref="IrrException">Any other name: "<c>COMMAND: dtype must be keep, bf16, f16 or f32, not 'X'</c>".</exception>
    public static TensorDType? ParseOutput(string dtype, string command) => dtype switch
    {
        "keep" => null,
        "bf16" or "bfloat16" => TensorDType.BF16,
        "f16" or "fp16" or "float16" => TensorDType.F16,
        "f32" or "fp32" or "float32" => TensorDType.F32,
        _ => throw new IrrException($"{command}: dtype must be keep, bf16, f16 or f32, not '{dtype}'"),
    };

    /// <summary>
    /// The dtype of a Hugging Face <c>torch_dtype</c> string ("bfloat16", "float16", "float32", also
    /// "bf16", "fp16", "fp32", "half", "float"); false when it names something else.
    /// </summary>
    public static bool TryParseTorch(string name, out TensorDType type)
    {
        switch (name.Trim().ToLowerInvariant().Replace("torch.", ""))
        {
            case "bfloat16" or "bf16": type = TensorDType.BF16; return true;
            case "float16" or "fp16" or "half": type = TensorDType.F16; return true;
            case "float32" or "fp32" or "float": type = TensorDType.F32; return true;
            default: type = default; return false;
        }
    }

    /// <summary>The <c>torch_dtype</c> string of a dtype ("bfloat16").</summary>
    public static string ToTorchName(this TensorDType type) => type switch
    {
        TensorDType.BF16 => "bfloat16",
        TensorDType.F16 => "float16",
        TensorDType.F32 => "float32",
        _ => type.ToString().ToLowerInvariant(),
    };
}
