"""The 20 ELEVATER image-classification data sets (Li et al., 2022, "ELEVATER: A Benchmark and Toolkit for
Evaluating Language-Augmented Visual Models", NeurIPS Datasets and Benchmarks) and raykd's two built-ins.

Root folders, index files, zips, label maps and sizes follow ELEVATER's dataset manifest
(``vision_datasets.json`` in Elevater_Toolkit_IC); metrics follow its data-set configs. Prompt templates and
the class names typed out below are those of the toolkit's ``prompts.py`` (taken from the OpenAI CLIP
repository's ``data/prompts.md``), in the toolkit's label order -- note that ELEVATER's cifar-100 order is
not alphabetical and its fer-2013 order is not FER's original one. The long lists (caltech-101,
fgvc-aircraft, food-101, oxford flowers and pets, stanford-cars, imagenet-1k) are in ``classnames``. As in
the toolkit, no ELEVATER set takes its prompt names from ``labels.txt``.

imagenet-1k is the optional 21st set (test only; ``ELEVATER_21``). kitti-distance is resized whole, without
a centre crop (its config's ``DATASET.CENTER_CROP: false``; ``vision_benchmark/resources/datasets/``).
"""
from __future__ import annotations

from raykd.data.synthetic import BUILTIN_SETS
from raykd.eval.elevater._registry import ElevaterDataset, SplitFiles, register_dataset
from raykd.eval.elevater.classnames import (CALTECH101, FGVC_AIRCRAFT, FLOWERS102, FOOD101, IMAGENET,
                                            IMAGENET_TEMPLATES, OXFORD_PETS, STANFORD_CARS)
from raykd.eval.templates import CIFAR_TEMPLATES


def _iris(index: str, *zips: str) -> SplitFiles:
    return SplitFiles(index, tuple(zips))


# ---------------------------------------------------------------------------------------------- class names
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100 = (  # ELEVATER's label order (its labels.txt), not the alphabetical one
    "chimpanzee", "trout", "skunk", "spider", "chair", "tank", "keyboard", "man", "whale", "lobster",
    "house", "beetle", "bear", "shrew", "bottle", "cup", "bus", "orange", "sea", "oak tree",
    "bed", "tulip", "rabbit", "skyscraper", "apple", "maple tree", "pine tree", "snail", "pear", "bridge",
    "train", "mountain", "caterpillar", "crocodile", "snake", "kangaroo", "dolphin", "cattle", "raccoon",
    "mushroom", "hamster", "bowl", "lamp", "rocket", "pickup truck", "wolf", "worm", "otter", "sunflower",
    "leopard", "ray", "lawn mower", "motorcycle", "boy", "fox", "palm tree", "cloud", "dinosaur", "turtle",
    "forest", "couch", "poppy", "rose", "bee", "girl", "clock", "can", "table", "road", "orchid",
    "streetcar", "squirrel", "crab", "butterfly", "tractor", "beaver", "willow tree", "camel", "plain",
    "mouse", "elephant", "flatfish", "sweet pepper", "plate", "television", "aquarium fish", "wardrobe",
    "seal", "lizard", "cockroach", "porcupine", "woman", "possum", "baby", "tiger", "telephone", "shark",
    "lion", "castle", "bicycle",
)
COUNTRY211 = (  # ISO 3166 alpha-2 code order (AD, AE, AF, ...)
    "Andorra", "United Arab Emirates", "Afghanistan", "Antigua and Barbuda", "Anguilla", "Albania", "Armenia",
    "Angola", "Antarctica", "Argentina", "Austria", "Australia", "Aruba", "Aland Islands", "Azerbaijan",
    "Bosnia and Herzegovina", "Barbados", "Bangladesh", "Belgium", "Burkina Faso", "Bulgaria", "Bahrain",
    "Benin", "Bermuda", "Brunei Darussalam", "Bolivia", "Bonaire, Saint Eustatius and Saba", "Brazil",
    "Bahamas", "Bhutan", "Botswana", "Belarus", "Belize", "Canada", "DR Congo", "Central African Republic",
    "Switzerland", "Cote d'Ivoire", "Cook Islands", "Chile", "Cameroon", "China", "Colombia", "Costa Rica",
    "Cuba", "Cabo Verde", "Curacao", "Cyprus", "Czech Republic", "Germany", "Denmark", "Dominica",
    "Dominican Republic", "Algeria", "Ecuador", "Estonia", "Egypt", "Spain", "Ethiopia", "Finland", "Fiji",
    "Falkland Islands", "Faeroe Islands", "France", "Gabon", "United Kingdom", "Grenada", "Georgia",
    "French Guiana", "Guernsey", "Ghana", "Gibraltar", "Greenland", "Gambia", "Guadeloupe", "Greece",
    "South Georgia and South Sandwich Is.", "Guatemala", "Guam", "Guyana", "Hong Kong", "Honduras", "Croatia",
    "Haiti", "Hungary", "Indonesia", "Ireland", "Israel", "Isle of Man", "India", "Iraq", "Iran", "Iceland",
    "Italy", "Jersey", "Jamaica", "Jordan", "Japan", "Kenya", "Kyrgyz Republic", "Cambodia",
    "St. Kitts and Nevis", "North Korea", "South Korea", "Kuwait", "Cayman Islands", "Kazakhstan", "Laos",
    "Lebanon", "St. Lucia", "Liechtenstein", "Sri Lanka", "Liberia", "Lithuania", "Luxembourg", "Latvia",
    "Libya", "Morocco", "Monaco", "Moldova", "Montenegro", "Saint-Martin", "Madagascar", "Macedonia", "Mali",
    "Myanmar", "Mongolia", "Macau", "Martinique", "Mauritania", "Malta", "Mauritius", "Maldives", "Malawi",
    "Mexico", "Malaysia", "Mozambique", "Namibia", "New Caledonia", "Nigeria", "Nicaragua", "Netherlands",
    "Norway", "Nepal", "New Zealand", "Oman", "Panama", "Peru", "French Polynesia", "Papua New Guinea",
    "Philippines", "Pakistan", "Poland", "Puerto Rico", "Palestine", "Portugal", "Palau", "Paraguay", "Qatar",
    "Reunion", "Romania", "Serbia", "Russia", "Rwanda", "Saudi Arabia", "Solomon Islands", "Seychelles",
    "Sudan", "Sweden", "Singapore", "St. Helena", "Slovenia", "Svalbard and Jan Mayen Islands", "Slovakia",
    "Sierra Leone", "San Marino", "Senegal", "Somalia", "South Sudan", "El Salvador", "Sint Maarten", "Syria",
    "Eswatini", "Togo", "Thailand", "Tajikistan", "Timor-Leste", "Turkmenistan", "Tunisia", "Tonga", "Turkey",
    "Trinidad and Tobago", "Taiwan", "Tanzania", "Ukraine", "Uganda", "United States", "Uruguay",
    "Uzbekistan", "Vatican", "Venezuela", "British Virgin Islands", "United States Virgin Islands", "Vietnam",
    "Vanuatu", "Samoa", "Kosovo", "Yemen", "South Africa", "Zambia", "Zimbabwe",
)
DTD = (
    "banded", "blotchy", "braided", "bubbly", "bumpy", "chequered", "cobwebbed", "cracked", "crosshatched",
    "crystalline", "dotted", "fibrous", "flecked", "freckled", "frilly", "gauzy", "grid", "grooved",
    "honeycombed", "interlaced", "knitted", "lacelike", "lined", "marbled", "matted", "meshed", "paisley",
    "perforated", "pitted", "pleated", "polka-dotted", "porous", "potholed", "scaly", "smeared", "spiralled",
    "sprinkled", "stained", "stratified", "striped", "studded", "swirly", "veined", "waffled", "woven",
    "wrinkled", "zigzagged",
)
EUROSAT = (
    "annual crop land", "forest", "brushland or shrubland", "highway or road",
    "industrial buildings or commercial buildings", "pasture land", "permanent crop land",
    "residential buildings or homes or apartments", "river", "lake or sea",
)
FER2013 = ("angry", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")  # first synonym of each
GTSRB = (
    "red and white circle 20 kph speed limit", "red and white circle 30 kph speed limit",
    "red and white circle 50 kph speed limit", "red and white circle 60 kph speed limit",
    "red and white circle 70 kph speed limit", "red and white circle 80 kph speed limit",
    "end / de-restriction of 80 kph speed limit", "red and white circle 100 kph speed limit",
    "red and white circle 120 kph speed limit", "red and white circle red car and black car no passing",
    "red and white circle red truck and black car no passing", "red and white triangle road intersection warning",
    "white and yellow diamond priority road", "red and white upside down triangle yield right-of-way", "stop",
    "empty red and white circle", "red and white circle no truck entry",
    "red circle with white horizonal stripe no entry", "red and white triangle with exclamation mark warning",
    "red and white triangle with black left curve approaching warning",
    "red and white triangle with black right curve approaching warning",
    "red and white triangle with black double curve approaching warning",
    "red and white triangle rough / bumpy road warning", "red and white triangle car skidding / slipping warning",
    "red and white triangle with merging / narrow lanes warning",
    "red and white triangle with person digging / construction / road work warning",
    "red and white triangle with traffic light approaching warning",
    "red and white triangle with person walking warning",
    "red and white triangle with child and person walking warning", "red and white triangle with bicyle warning",
    "red and white triangle with snowflake / ice warning", "red and white triangle with deer warning",
    "white circle with gray strike bar no speed limit", "blue circle with white right turn arrow mandatory",
    "blue circle with white left turn arrow mandatory", "blue circle with white forward arrow mandatory",
    "blue circle with white forward or right turn arrow mandatory",
    "blue circle with white forward or left turn arrow mandatory",
    "blue circle with white keep right arrow mandatory", "blue circle with white keep left arrow mandatory",
    "blue circle with white arrows indicating a traffic circle",
    "white circle with gray strike bar indicating no passing for cars has ended",
    "white circle with gray strike bar indicating no passing for trucks has ended",
)
KITTI = (
    "a photo i took of a car on my left or right side.", "a photo i took with a car nearby.",
    "a photo i took with a car in the distance.", "a photo i took with no car.",
)
MNIST = tuple(str(d) for d in range(10))
RESISC45 = (
    "airplane", "airport", "baseball diamond", "basketball court", "beach", "bridge", "chaparral", "church",
    "circular farmland", "cloud", "commercial area", "dense residential", "desert", "forest", "freeway",
    "golf course", "ground track field", "harbor", "industrial area", "intersection", "island", "lake",
    "meadow", "medium residential", "mobile home park", "mountain", "overpass", "palace", "parking lot",
    "railway", "railway station", "rectangular farmland", "river", "roundabout", "runway", "sea ice", "ship",
    "snowberg", "sparse residential", "stadium", "storage tank", "tennis court", "terrace",
    "thermal power station", "wetland",
)
VOC2007 = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
    "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

# ---------------------------------------------------------------------------------------------- templates
CALTECH101_TEMPLATES = (
    "a photo of a {}.", "a painting of a {}.", "a plastic {}.", "a sculpture of a {}.", "a sketch of a {}.",
    "a tattoo of a {}.", "a toy {}.", "a rendition of a {}.", "a embroidered {}.", "a cartoon {}.",
    "a {} in a video game.", "a plushie {}.", "a origami {}.", "art of a {}.", "graffiti of a {}.",
    "a drawing of a {}.", "a doodle of a {}.", "a photo of the {}.", "a painting of the {}.", "the plastic {}.",
    "a sculpture of the {}.", "a sketch of the {}.", "a tattoo of the {}.", "the toy {}.",
    "a rendition of the {}.", "the embroidered {}.", "the cartoon {}.", "the {} in a video game.",
    "the plushie {}.", "the origami {}.", "art of the {}.", "graffiti of the {}.", "a drawing of the {}.",
    "a doodle of the {}.",
)
COUNTRY211_TEMPLATES = (
    "a photo i took in {}.", "a photo i took while visiting {}.", "a photo from my home country of {}.",
    "a photo from my visit to {}.", "a photo showing the country of {}.",
)
DTD_TEMPLATES = (
    "a photo of a {} texture.", "a photo of a {} pattern.", "a photo of a {} thing.", "a photo of a {} object.",
    "a photo of the {} texture.", "a photo of the {} pattern.", "a photo of the {} thing.",
    "a photo of the {} object.",
)
EUROSAT_TEMPLATES = (
    "a centered satellite photo of {}.", "a centered satellite photo of a {}.",
    "a centered satellite photo of the {}.",
)
FER2013_TEMPLATES = (
    "a photo of a {} looking face.", "a photo of a face showing the emotion: {}.", "a photo of a face looking {}.",
    "a face that looks {}.", "they look {}.", "look at how {} they are.",
)
GTSRB_TEMPLATES = (
    'a zoomed in photo of a "{}" traffic sign.', 'a centered photo of a "{}" traffic sign.',
    'a close up photo of a "{}" traffic sign.',
)
RESISC45_TEMPLATES = tuple(
    f"{kind} {view} of {article}{{}}." for article in ("", "a ", "the ")
    for kind, view in (("satellite", "imagery"), ("aerial", "imagery"), ("satellite", "photo"),
                       ("aerial", "photo"), ("satellite", "view"), ("aerial", "view"))
)
STANFORD_CARS_TEMPLATES = (
    "a photo of a {}.", "a photo of the {}.", "a photo of my {}.", "i love my {}!", "a photo of my dirty {}.",
    "a photo of my clean {}.", "a photo of my new {}.", "a photo of my old {}.",
)

# ---------------------------------------------------------------------------------------------- the 20 sets
_ROOT = "classification/"
register_dataset(ElevaterDataset(
    "caltech-101", _ROOT + "caltech_101_20211007", 102, "mean-per-class", CALTECH101_TEMPLATES,
    train=_iris("train.txt", "train.zip"), test=_iris("test.txt", "test.zip"),
    classnames=CALTECH101, aliases=("caltech101",), num_test=6084))
register_dataset(ElevaterDataset(
    "cifar-10", _ROOT + "cifar_10_20211007", 10, "accuracy", CIFAR_TEMPLATES,
    train=_iris("train.txt", "train.zip"), test=_iris("test.txt", "val.zip"),
    classnames=CIFAR10, aliases=("cifar10",), num_test=10000))
register_dataset(ElevaterDataset(
    "cifar-100", _ROOT + "cifar100_20200721", 100, "accuracy", CIFAR_TEMPLATES,
    train=_iris("train_images.txt", "train_images.zip"), test=_iris("test_images.txt", "test_images.zip"),
    classnames=CIFAR100, aliases=("cifar100",), num_test=10000))
register_dataset(ElevaterDataset(
    "country211", _ROOT + "country211_20210924", 211, "accuracy", COUNTRY211_TEMPLATES,
    train=_iris("train.txt", "train.zip"), val=_iris("valid.txt", "valid.zip"), test=_iris("test.txt", "test.zip"),
    classnames=COUNTRY211, num_test=21100))
register_dataset(ElevaterDataset(
    "dtd", _ROOT + "dtd_20211007", 47, "accuracy", DTD_TEMPLATES,
    train=_iris("train.txt", "train.zip"), val=_iris("val.txt", "val.zip"), test=_iris("test.txt", "test.zip"),
    classnames=DTD, num_test=1880))
register_dataset(ElevaterDataset(
    "eurosat_clip", _ROOT + "eurosat_clip_20210930", 10, "accuracy", EUROSAT_TEMPLATES,
    train=_iris("train.txt", "2750.zip"), val=_iris("val.txt", "2750.zip"), test=_iris("test.txt", "2750.zip"),
    classnames=EUROSAT, aliases=("eurosat-clip", "eurosat"), num_test=5000))
register_dataset(ElevaterDataset(
    "fer-2013", _ROOT + "fer_2013_20211008", 7, "accuracy", FER2013_TEMPLATES,
    train=_iris("train.txt", "train.zip"), val=_iris("val.txt", "val.zip"), test=_iris("test.txt", "test.zip"),
    classnames=FER2013, aliases=("fer2013",), num_test=3589))
register_dataset(ElevaterDataset(
    "fgvc-aircraft-2013b-variants102", _ROOT + "fgvc_aircraft_2013b_variants102_20211007", 100, "mean-per-class",
    ("a photo of a {}, a type of aircraft.", "a photo of the {}, a type of aircraft."),
    train=_iris("train.txt", "train.zip"), val=_iris("val.txt", "val.zip"), test=_iris("test.txt", "test.zip"),
    classnames=FGVC_AIRCRAFT, aliases=("fgvc-aircraft-2013b", "fgvc-aircraft"), num_test=3333))
register_dataset(ElevaterDataset(
    "food-101", _ROOT + "food_101_20211007", 101, "accuracy", ("a photo of {}, a type of food.",),
    train=_iris("train.txt", "train.zip"), test=_iris("test.txt", "val.zip"),
    classnames=FOOD101, aliases=("food101",), num_test=25250))
register_dataset(ElevaterDataset(
    "gtsrb", _ROOT + "gtsrb_20210923", 43, "accuracy", GTSRB_TEMPLATES, labelmap="labelmap.txt",
    train=_iris("train.txt", "train.zip"), val=_iris("val.txt", "val.zip"),
    test=_iris("test.txt", "final_test.zip"), classnames=GTSRB, num_test=12630))
register_dataset(ElevaterDataset(
    "hateful-memes", _ROOT + "hateful_memes_20211014", 2, "roc_auc", ("a {}.",), labelmap=None, format="coco",
    train=_iris("train_meta.json", "img.zip"), test=_iris("test_meta.json", "img.zip"),
    classnames=("meme", "hatespeech meme"), aliases=("hatefulmemes",), num_test=500))
register_dataset(ElevaterDataset(
    "kitti-distance", _ROOT + "kitti_distance_20210923", 4, "accuracy", ("{}",), labelmap=None, format="coco",
    train=_iris("train_meta.json", "train_images.zip"), val=_iris("validation_meta.json", "validation_images.zip"),
    test=_iris("test_meta.json", "test_images.zip"), classnames=KITTI, num_test=711, center_crop=False))
register_dataset(ElevaterDataset(
    "mnist", _ROOT + "mnist_20211008", 10, "accuracy", ('a photo of the number: "{}".',),
    train=_iris("train.txt", "train.zip"), test=_iris("test.txt", "val.zip"), classnames=MNIST, num_test=10000))
register_dataset(ElevaterDataset(
    "oxford-flower-102", _ROOT + "oxford_flower_102_20211007", 102, "mean-per-class",
    ("a photo of a {}, a type of flower.",),
    train=_iris("train.txt", "train.zip"), val=_iris("val.txt", "val.zip"), test=_iris("test.txt", "test.zip"),
    classnames=FLOWERS102, aliases=("flower102", "flowers102"), num_test=6149))
register_dataset(ElevaterDataset(
    "oxford-iiit-pets", _ROOT + "oxford_iiit_pets_20211007", 37, "mean-per-class",
    ("a photo of a {}, a type of pet.",),
    train=_iris("train.txt", "train.zip"), test=_iris("test.txt", "val.zip"), classnames=OXFORD_PETS,
    aliases=("pets",), num_test=3669))
register_dataset(ElevaterDataset(
    "patch-camelyon", _ROOT + "patch_camelyon_20211007", 2, "accuracy", ("this is a photo of {}",),
    train=_iris("train.txt", "train.zip"), val=_iris("val.txt", "validation.zip"), test=_iris("test.txt", "test.zip"),
    classnames=("lymph node", "lymph node containing metastatic tumor tissue"),
    aliases=("patchcamelyon", "pcam"), search_shots=10000, num_test=32768))
register_dataset(ElevaterDataset(
    "rendered-sst2", _ROOT + "rendered_sst2_20210924", 2, "accuracy", ("a {} review of a movie.",),
    train=_iris("train.txt", "train.zip"), val=_iris("valid.txt", "valid.zip"), test=_iris("test.txt", "test.zip"),
    classnames=("negative", "positive"), aliases=("renderedsst2", "sst2"), num_test=1821))
register_dataset(ElevaterDataset(
    "resisc45_clip", _ROOT + "resisc45_clip_20210924", 45, "accuracy", RESISC45_TEMPLATES, labelmap=None,
    format="coco", train=_iris("train.json", "images.zip"), val=_iris("val.json", "images.zip"),
    test=_iris("test.json", "images.zip"), classnames=RESISC45, aliases=("resisc45-clip", "resisc45"),
    num_test=25200))
register_dataset(ElevaterDataset(
    "stanford-cars", _ROOT + "stanford_cars_20211007", 196, "accuracy", STANFORD_CARS_TEMPLATES,
    train=_iris("train.txt", "train.zip"), test=_iris("test.txt", "val.zip"),
    classnames=STANFORD_CARS, aliases=("stanfordcar", "stanfordcars"), num_test=8041))
register_dataset(ElevaterDataset(
    "voc-2007-classification", _ROOT + "voc2007_20211007", 20, "11point_mAP", ("a photo of a {}.",),
    train=_iris("train_ic.txt", "train.zip"), val=_iris("val_ic.txt", "train.zip"),
    test=_iris("test_ic.txt", "test.zip"), multilabel=True, classnames=VOC2007,
    aliases=("voc2007classification", "voc2007"), num_test=4952))

ELEVATER_20 = tuple(n for n in (
    "caltech-101", "cifar-10", "cifar-100", "country211", "dtd", "eurosat_clip", "fer-2013",
    "fgvc-aircraft-2013b-variants102", "food-101", "gtsrb", "hateful-memes", "kitti-distance", "mnist",
    "oxford-flower-102", "oxford-iiit-pets", "patch-camelyon", "rendered-sst2", "resisc45_clip", "stanford-cars",
    "voc-2007-classification"))

register_dataset(ElevaterDataset(  # the optional 21st set: test only (the manifest's train split has 0 images)
    "imagenet-1k", _ROOT + "imagenet_1k_20220105", 1000, "accuracy", IMAGENET_TEMPLATES, labelmap=None,
    format="coco", train=_iris("train.json", "train_images.zip"), test=_iris("val.json", "val_images.zip"),
    classnames=IMAGENET, aliases=("imagenet", "imagenet1k"), num_test=50000))
ELEVATER_21 = (*ELEVATER_20, "imagenet-1k")


# ---------------------------------------------------------------------------------------------- built-ins
def builtin_spec(name: str, dataset_id: str | None = None) -> ElevaterDataset:
    """The ELEVATER-layout spec of raykd built-in set ``name`` (``shapes`` | ``digits``), written under
    ``classification/<dataset_id>_builtin/``; ``dataset_id`` defaults to ``name`` (another id gives an
    independent copy, e.g. for benchmarks). Class names come from its ``labels.txt``."""
    synthetic = BUILTIN_SETS[name]
    dataset_id = dataset_id or name
    return ElevaterDataset(
        dataset_id, f"{_ROOT}{dataset_id.replace('-', '_')}_builtin", len(synthetic.classnames), "accuracy",
        tuple(synthetic.templates), train=_iris("train.txt", "train.zip"), test=_iris("test.txt", "test.zip"),
        num_test=synthetic.test_size, builtin=name)


for _name in sorted(BUILTIN_SETS):
    register_dataset(builtin_spec(_name))
