using EmaPg.Common;

namespace EmaPg.Tests.Common;

public class SeedMixTests
{
    /// <summary>
    /// Combine replaced the Top-k variance study's own seed function; these values are that function's outputs, computed by an
    /// independent 64-bit re-implementation of it (Python), so the study draws exactly the samples it drew before.
    /// </summary>
    [Fact]
    public void CombineGivesTheSeedsTheVarianceStudyUsedBefore()
    {
        Assert.Equal(4724868851444856239L, SeedMix.Combine(0, 0));
        Assert.Equal(3762593920173895002L, SeedMix.Combine(7, 3));
        Assert.Equal(7628331470987199681L, SeedMix.Combine(1, 2, 3, 4, 5, 6));
        Assert.Equal(7061484737785031463L, SeedMix.Combine(-1, 5));
    }
}
