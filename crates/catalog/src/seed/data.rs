//! The demo catalog's vocabulary and a deterministic generator: product
//! `i` is always the same product, with no downloads.

/// A demo category: its name, the things it sells and their price range.
pub struct CategorySpec {
    /// Display name.
    pub name: &'static str,
    /// Slug.
    pub slug: &'static str,
    /// SKU prefix.
    pub code: &'static str,
    /// Product nouns.
    pub nouns: &'static [&'static str],
    /// Selling points for descriptions.
    pub features: &'static [&'static str],
    /// Price range in whole dollars.
    pub price: (u64, u64),
}

/// The demo categories.
pub const CATEGORIES: &[CategorySpec] = &[
    CategorySpec {
        name: "Electronics",
        slug: "electronics",
        code: "ELE",
        nouns: &[
            "Headphones",
            "Bluetooth Speaker",
            "Smartwatch",
            "USB-C Charger",
            "Power Bank",
            "Webcam",
            "Mechanical Keyboard",
            "Wireless Mouse",
            "E-Reader",
            "Action Camera",
            "Soundbar",
            "Monitor",
        ],
        features: &[
            "long battery life",
            "fast charging",
            "noise cancellation",
            "a crisp display",
            "low-latency wireless",
            "a two-year warranty",
        ],
        price: (15, 900),
    },
    CategorySpec {
        name: "Books",
        slug: "books",
        code: "BOO",
        nouns: &[
            "Cookbook",
            "Novel",
            "Field Guide",
            "Atlas",
            "Poetry Collection",
            "Biography",
            "Travel Guide",
            "Graphic Novel",
            "Workbook",
            "Short Stories",
        ],
        features: &[
            "a sewn binding",
            "full-colour illustrations",
            "a foreword by the author",
            "an index and glossary",
            "acid-free paper",
            "a ribbon bookmark",
        ],
        price: (6, 60),
    },
    CategorySpec {
        name: "Home & Kitchen",
        slug: "home-kitchen",
        code: "HOM",
        nouns: &[
            "Kettle",
            "Chef's Knife",
            "Cast Iron Skillet",
            "Coffee Grinder",
            "French Press",
            "Cutting Board",
            "Dutch Oven",
            "Toaster",
            "Blender",
            "Tea Towel Set",
            "Spice Rack",
        ],
        features: &[
            "dishwasher-safe parts",
            "an ergonomic handle",
            "even heat distribution",
            "a non-slip base",
            "food-grade materials",
            "a lifetime guarantee",
        ],
        price: (8, 350),
    },
    CategorySpec {
        name: "Garden & Outdoors",
        slug: "garden-outdoors",
        code: "GAR",
        nouns: &[
            "Garden Hose",
            "Pruning Shears",
            "Raised Planter",
            "Bird Feeder",
            "Solar Lantern",
            "Hammock",
            "Watering Can",
            "Compost Bin",
            "Camping Stove",
            "Tent",
        ],
        features: &[
            "UV-resistant finish",
            "rust-proof steel",
            "weatherproof seams",
            "a foldable design",
            "recycled materials",
            "easy assembly",
        ],
        price: (9, 480),
    },
    CategorySpec {
        name: "Toys & Games",
        slug: "toys-games",
        code: "TOY",
        nouns: &[
            "Board Game",
            "Jigsaw Puzzle",
            "Building Blocks",
            "Plush Bear",
            "Card Game",
            "Kite",
            "Model Train",
            "Science Kit",
            "Wooden Puzzle",
            "Marble Run",
        ],
        features: &[
            "non-toxic paints",
            "hours of family fun",
            "pieces sized for small hands",
            "a sturdy storage box",
            "clear instructions",
            "replayable challenges",
        ],
        price: (5, 150),
    },
    CategorySpec {
        name: "Sports & Fitness",
        slug: "sports-fitness",
        code: "SPO",
        nouns: &[
            "Yoga Mat",
            "Dumbbell Set",
            "Running Shoes",
            "Jump Rope",
            "Water Bottle",
            "Resistance Bands",
            "Tennis Racket",
            "Cycling Helmet",
            "Foam Roller",
            "Football",
        ],
        features: &[
            "sweat-resistant grip",
            "breathable fabric",
            "shock absorption",
            "a lightweight frame",
            "adjustable straps",
            "tournament-grade build",
        ],
        price: (7, 320),
    },
    CategorySpec {
        name: "Clothing",
        slug: "clothing",
        code: "CLO",
        nouns: &[
            "T-Shirt",
            "Hoodie",
            "Rain Jacket",
            "Wool Socks",
            "Denim Jeans",
            "Scarf",
            "Beanie",
            "Chino Trousers",
            "Fleece",
            "Linen Shirt",
        ],
        features: &[
            "organic cotton",
            "a relaxed fit",
            "reinforced seams",
            "machine-washable fabric",
            "a water-repellent coating",
            "ethically sourced wool",
        ],
        price: (9, 240),
    },
    CategorySpec {
        name: "Beauty & Care",
        slug: "beauty-care",
        code: "BEA",
        nouns: &[
            "Face Cream",
            "Shampoo",
            "Lip Balm",
            "Hand Soap",
            "Body Lotion",
            "Beard Oil",
            "Sunscreen",
            "Hair Brush",
            "Bath Salts",
            "Face Serum",
        ],
        features: &[
            "fragrance-free formulas",
            "natural oils",
            "dermatologist testing",
            "recyclable packaging",
            "vegan ingredients",
            "SPF protection",
        ],
        price: (4, 90),
    },
    CategorySpec {
        name: "Grocery",
        slug: "grocery",
        code: "GRO",
        nouns: &[
            "Olive Oil",
            "Coffee Beans",
            "Green Tea",
            "Dark Chocolate",
            "Honey",
            "Pasta",
            "Granola",
            "Hot Sauce",
            "Maple Syrup",
            "Sea Salt",
        ],
        features: &[
            "single-origin sourcing",
            "small-batch production",
            "no added sugar",
            "fair-trade certification",
            "a resealable pack",
            "organic farming",
        ],
        price: (2, 45),
    },
    CategorySpec {
        name: "Automotive",
        slug: "automotive",
        code: "AUT",
        nouns: &[
            "Dash Cam",
            "Tyre Inflator",
            "Car Vacuum",
            "Phone Mount",
            "Jump Starter",
            "Seat Cover",
            "Wiper Blades",
            "Floor Mats",
            "Roof Box",
            "Tool Kit",
        ],
        features: &[
            "a universal fit",
            "a 12V plug",
            "tool-free installation",
            "all-weather durability",
            "a compact footprint",
            "clear LED indicators",
        ],
        price: (10, 600),
    },
    CategorySpec {
        name: "Office Supplies",
        slug: "office-supplies",
        code: "OFF",
        nouns: &[
            "Notebook",
            "Fountain Pen",
            "Desk Lamp",
            "Stapler",
            "Desk Organizer",
            "Whiteboard",
            "Paper Shredder",
            "Label Maker",
            "Monitor Stand",
            "Planner",
        ],
        features: &[
            "bleed-resistant paper",
            "a weighted base",
            "a minimalist design",
            "jam-free operation",
            "refillable parts",
            "a soft-touch finish",
        ],
        price: (3, 280),
    },
    CategorySpec {
        name: "Pet Supplies",
        slug: "pet-supplies",
        code: "PET",
        nouns: &[
            "Dog Bed",
            "Cat Tree",
            "Chew Toy",
            "Leash",
            "Pet Fountain",
            "Litter Box",
            "Bird Cage",
            "Aquarium Filter",
            "Grooming Brush",
            "Food Bowl",
        ],
        features: &[
            "washable covers",
            "chew-resistant material",
            "a quiet pump",
            "non-slip feet",
            "vet-approved design",
            "easy-clean surfaces",
        ],
        price: (4, 260),
    },
];

const BRANDS: &[&str] = &[
    "Acme",
    "Northwind",
    "Lumen",
    "Halvorsen",
    "Bluebird",
    "Copperline",
    "Everpine",
    "Kestrel",
    "Maple & Co",
    "Nimbus",
    "Orchard",
    "Pioneer",
    "Quill",
    "Redwood",
    "Saltmarsh",
    "Tidewater",
    "Umber",
    "Vantage",
    "Willow",
    "Zephyr",
    "Aurora",
    "Brightside",
    "Cobalt",
    "Driftwood",
    "Ember",
    "Fjord",
    "Granite",
    "Harbor",
];

const ADJECTIVES: &[&str] = &[
    "Classic",
    "Compact",
    "Deluxe",
    "Eco",
    "Essential",
    "Everyday",
    "Ultra",
    "Pro",
    "Premium",
    "Rugged",
    "Slim",
    "Smart",
    "Travel",
    "Vintage",
    "Modern",
    "Heritage",
    "Lightweight",
    "Heavy-Duty",
    "Signature",
    "Studio",
    "Organic",
    "Artisan",
];

const VARIANTS: &[&str] = &[
    "Black",
    "White",
    "Navy",
    "Olive",
    "Sand",
    "Charcoal",
    "Red",
    "Teal",
    "Small",
    "Medium",
    "Large",
    "XL",
    "Mk II",
    "2-Pack",
    "Family Size",
    "Limited Edition",
];

/// One generated product.
pub struct DemoProduct {
    /// Index into [`CATEGORIES`].
    pub category: usize,
    /// Unique SKU.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Price in cents.
    pub price_cents: i64,
    /// Stock.
    pub stock: i64,
}

/// SplitMix64: tiny, fast and good enough to vary demo data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Product number `i` of the demo catalog.
pub fn product(i: u64) -> DemoProduct {
    let mut rng = Rng(i.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x00B5_A2A2);
    let category = rng.below(CATEGORIES.len());
    let spec = &CATEGORIES[category];
    let brand = rng.pick(BRANDS);
    let adjective = rng.pick(ADJECTIVES);
    let noun = rng.pick(spec.nouns);
    let name = if rng.below(3) == 0 {
        format!("{brand} {adjective} {noun}")
    } else {
        format!("{brand} {adjective} {noun}, {}", rng.pick(VARIANTS))
    };
    let f1 = rng.pick(spec.features);
    let mut f2 = rng.pick(spec.features);
    if f2 == f1 {
        f2 = spec.features
            [(spec.features.iter().position(|f| *f == f1).unwrap_or(0) + 1) % spec.features.len()];
    }
    let lower_noun = noun.to_lowercase();
    let opener = match rng.below(4) {
        0 => format!("The {brand} {lower_noun} is built for everyday use, with {f1} and {f2}."),
        1 => format!(
            "A {} {lower_noun} from {brand}, featuring {f1}.",
            adjective.to_lowercase()
        ),
        2 => format!("Meet the {adjective} {lower_noun}: {f1}, {f2}, and nothing you don't need."),
        _ => format!("{brand} designed this {lower_noun} around {f1}; reviewers love its {f2}."),
    };
    let closer = match rng.below(4) {
        0 => "Ships in recyclable packaging.",
        1 => "Backed by our 30-day return policy.",
        2 => "A customer favourite in its category.",
        _ => "Makes a thoughtful gift.",
    };
    let (lo, hi) = spec.price;
    let dollars = lo + rng.next() % (hi - lo + 1);
    let cents = [99, 49, 0, 95, 79, 25][rng.below(6)];
    let price_cents = (dollars * 100 + cents).max(1) as i64;
    let stock = match rng.below(10) {
        0 => 0,
        1 => rng.below(5) as i64 + 1,
        _ => rng.below(500) as i64 + 5,
    };
    DemoProduct {
        category,
        sku: format!("{}-{:07}", spec.code, i),
        name,
        description: format!("{opener} {closer}"),
        price_cents,
        stock,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_varied() {
        let a = product(42);
        let b = product(42);
        assert_eq!(
            (a.sku.as_str(), a.name.as_str()),
            (b.sku.as_str(), b.name.as_str())
        );
        let names: std::collections::HashSet<String> = (0..1000).map(|i| product(i).name).collect();
        assert!(names.len() > 900, "only {} distinct names", names.len());
        let cats: std::collections::HashSet<usize> =
            (0..1000).map(|i| product(i).category).collect();
        assert_eq!(cats.len(), CATEGORIES.len());
        assert!((0..1000).all(|i| product(i).price_cents > 0));
    }
}
